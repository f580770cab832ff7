"""Test-only storage backends, selected with MEDIA_STORAGE_BACKEND (or settings.STORAGES).

`DiskFullStorage` behaves like the file system storage until the disk "fills up": saving a
file whose name contains DISK_FULL_MATCH (default "/results/", i.e. face crops and overlays)
raises ENOSPC once DISK_FULL_AFTER such files have been written. A worker started with

    MEDIA_STORAGE_BACKEND=tests.helpers.storages.DiskFullStorage DISK_FULL_AFTER=2

therefore writes two crops, then fails in the middle of saving a result, which is the
worst case for leftovers.
"""

import errno
import os
import threading

from django.core.files.storage import FileSystemStorage


class DiskFullStorage(FileSystemStorage):
    _lock = threading.Lock()
    _saved = 0

    def _save(self, name, content):
        match = os.environ.get("DISK_FULL_MATCH", "/results/")
        allowed = int(os.environ.get("DISK_FULL_AFTER", "0"))
        if match in name.replace(os.sep, "/"):
            with self._lock:
                if DiskFullStorage._saved >= allowed:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), name)
                DiskFullStorage._saved += 1
        return super()._save(name, content)

    @classmethod
    def reset(cls):
        with cls._lock:
            cls._saved = 0


class PoisonStorage(FileSystemStorage):
    """Opening a file whose name contains POISON_MATCH (default "/video") SIGKILLs the process.

    Stands in for a video that crashes the decoder hard (a segfault, an OOM kill): the worker
    child dies on every attempt, so only a bound on attempts stops the job from looping.
    """

    def _open(self, name, mode="rb"):
        import signal

        if os.environ.get("POISON_MATCH", "/video") in name.replace(os.sep, "/"):
            os.kill(os.getpid(), signal.SIGKILL)
        return super()._open(name, mode)
