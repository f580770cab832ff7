"""Test-only storage backends, selected with MEDIA_STORAGE_BACKEND (or settings.STORAGES).

`DiskFullStorage` behaves like the file system storage until the disk "fills up": once
DISK_FULL_AFTER files whose names contain DISK_FULL_MATCH (default "/results/", i.e. face crops
and overlays) have been written, the next such file fails as a full disk does: Django's own
FileSystemStorage creates it, writes DISK_FULL_BYTES bytes (default 0) and gets ENOSPC from the
write, so whatever that leaves behind is what a real full disk would leave. A worker started with

    MEDIA_STORAGE_BACKEND=tests.helpers.storages.DiskFullStorage DISK_FULL_AFTER=2

therefore writes two crops, then fails in the middle of saving a result, which is the
worst case for leftovers.
"""

import errno
import os
import signal
import threading

from django.core.files.base import File
from django.core.files.storage import FileSystemStorage


def disk_full_error(name=None):
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), name)


class FillsUp(File):
    """`content`, whose chunks stop with ENOSPC after `room` bytes, as writes to a full disk do."""

    def __init__(self, content, room):
        super().__init__(content, getattr(content, "name", None))
        self.room = room

    def chunks(self, chunk_size=None):
        room = self.room
        for chunk in self.file.chunks(chunk_size) if hasattr(self.file, "chunks") else [self.file.read()]:
            if len(chunk) > room:
                if room:
                    yield chunk[:room]
                raise disk_full_error(self.name)
            room -= len(chunk)
            yield chunk


class DiskFullStorage(FileSystemStorage):
    _lock = threading.Lock()
    _saved = 0

    def _save(self, name, content):
        match = os.environ.get("DISK_FULL_MATCH", "/results/")
        allowed = int(os.environ.get("DISK_FULL_AFTER", "0"))
        if match in name.replace(os.sep, "/"):
            with self._lock:
                full = DiskFullStorage._saved >= allowed
                DiskFullStorage._saved += 1
            if full:
                content = FillsUp(content, int(os.environ.get("DISK_FULL_BYTES", "0")))
        return super()._save(name, content)

    @classmethod
    def reset(cls):
        with cls._lock:
            cls._saved = 0


class KillWhileSavingStorage(FileSystemStorage):
    """Saving a file whose name contains "/results/" SIGKILLs the process once KILL_AFTER such
    files have been written: a worker that dies in the middle of saving a result's images."""

    _saved = 0

    def _save(self, name, content):
        if "/results/" in name.replace(os.sep, "/"):
            if KillWhileSavingStorage._saved >= int(os.environ.get("KILL_AFTER", "0")):
                os.kill(os.getpid(), signal.SIGKILL)
            KillWhileSavingStorage._saved += 1
        return super()._save(name, content)


class PoisonStorage(FileSystemStorage):
    """Opening a file whose name contains POISON_MATCH (default "/video") SIGKILLs the process.

    Stands in for a video that crashes the decoder hard (a segfault, an OOM kill): the worker
    child dies on every attempt, so only a bound on attempts stops the job from looping.
    """

    def _open(self, name, mode="rb"):
        if os.environ.get("POISON_MATCH", "/video") in name.replace(os.sep, "/"):
            os.kill(os.getpid(), signal.SIGKILL)
        return super()._open(name, mode)
