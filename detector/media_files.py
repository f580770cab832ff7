"""Where a submission's files live, how they go, and what a storage failure tells the user.

Every file a submission owns (its video, and the crops and overlays of every attempt, finished,
failed or killed half-way) lives under `submissions/<public_id>/`, a name derived from its UUID
alone. Removing a submission's media removes that whole folder, so a file no row recorded (an
attempt killed while saving, a write cut short by a full disk) goes with it. Everything goes
through Django's storage API, so a remote storage works too; empty local folders are pruned.
"""

import errno
import logging
import os

logger = logging.getLogger(__name__)

ROOT = "submissions"

# The storage has no room: the user can do nothing but try again later.
FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})

UPLOAD_FULL_MESSAGE = (
    "The server has run out of storage space, so your video was not saved (nothing was kept). "
    "This is a problem on our side, not with your video: please try again later."
)
UPLOAD_UNAVAILABLE_MESSAGE = (
    "The server could not save your video because its storage is unavailable (nothing was kept). "
    "This is a problem on our side, not with your video: please try again later."
)


def job_full_message(submission):
    return (
        "The server ran out of storage space while saving the results, so this analysis stopped and "
        "nothing of it was kept. This is a problem on our side, not with your video: upload it again "
        f"later, or mention reference {submission.public_id} to support."
    )


def is_full(exc):
    """True when `exc` (or what it was raised from) says the storage has no room left."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OSError) and exc.errno in FULL_ERRNOS:
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


class StorageError(Exception):
    """Storing an upload failed for lack of room (`full`) or because the storage refused it."""

    def __init__(self, full):
        self.full = full
        super().__init__(UPLOAD_FULL_MESSAGE if full else UPLOAD_UNAVAILABLE_MESSAGE)

    @property
    def message(self):
        return self.args[0]

    @property
    def status(self):
        """The HTTP answer: 507 Insufficient Storage when full, else 503 (try again later)."""
        return 507 if self.full else 503

    @property
    def code(self):
        return "storage_full" if self.full else "storage_unavailable"


def submission_folder(public_id):
    return f"{ROOT}/{public_id}"


def attempt_folder(submission_public_id, result_public_id):
    """The crops and overlays of one attempt, named after the Result it will save."""
    return f"{submission_folder(submission_public_id)}/results/{result_public_id}"


def walk(storage, folder):
    """Storage names of every file under `folder`, at any depth (none when it does not exist)."""
    try:
        directories, files = storage.listdir(folder)
    except FileNotFoundError:
        return
    for name in files:
        yield f"{folder}/{name}"
    for directory in directories:
        yield from walk(storage, f"{folder}/{directory}")


def delete_names(storage, names):
    """Delete each name; returns those deleted. A failure is logged and does not stop the rest."""
    deleted = []
    for name in names:
        try:
            storage.delete(name)
        except Exception:
            logger.warning("could not delete %s from media storage", name, exc_info=True)
        else:
            deleted.append(name)
    return deleted


def delete_folder(storage, folder):
    """Delete every file under `folder` and the folder itself; returns the names deleted."""
    deleted = delete_names(storage, list(walk(storage, folder)))
    prune_empty_folders(storage, folder, keep_top=False)
    return deleted


def prune_empty_folders(storage, folder, *, keep_top=True, older_than=None):
    """Remove empty local folders under `folder` (and `folder` itself unless `keep_top`).

    `older_than`: a POSIX time; a folder changed since then is kept (someone may be about to
    write into it). Storages without local paths have no folders to prune.
    """
    try:
        top = storage.path(folder)
    except NotImplementedError:
        return
    if not os.path.isdir(top):
        return
    for path, _, _ in os.walk(top, topdown=False):
        if keep_top and path == top:
            continue
        try:
            if older_than is not None and os.stat(path).st_mtime >= older_than:
                continue
            os.rmdir(path)  # only ever succeeds on an empty folder
        except OSError:
            pass
