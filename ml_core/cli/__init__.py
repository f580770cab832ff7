"""Every `python -m ml_core.cli.<name>` entry point; argument parsing and printing only."""
