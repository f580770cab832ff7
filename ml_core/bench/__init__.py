"""Benchmarks, one module per mode; `python -m ml_core.cli.bench` picks one (see its --help)."""
