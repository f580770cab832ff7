"""Every `python -m ml_core.cli.<name>` entry point; argument parsing and printing only."""

import functools

from ml_core.errors import UsageError


def exits_on_usage_error(main):
    """Library code raises UsageError; a command prints its message and exits with status 1."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except UsageError as exc:
            raise SystemExit(str(exc)) from exc

    return wrapper
