"""The one way files are written: whole or not at all."""

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_write(path, mode="wb"):
    """A file object for a temporary file beside `path`, renamed over `path` when the block succeeds.

    Readers (another process, a resumed run, the web app) see the old file or the new one, never
    half of one; when the block raises, the temporary file is removed and `path` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_json(path, data, **dumps_options):
    """`data` as indented JSON at `path`, atomically; returns the path."""
    text = json.dumps(data, indent=1, **dumps_options) + "\n"
    with atomic_write(path, "w") as handle:
        handle.write(text)
    return Path(path)
