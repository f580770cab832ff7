"""The one way a video becomes a Submission: `check_video`, then `store_video`.

The upload page, the API and `manage.py analyze` all come through here, so every video gets the
same checks (name, extension, size, content, duration) and nothing is stored for one that fails.
"""

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from django.core.files import File

from . import media_files, services, validators
from .models import Submission

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckedVideo:
    original_name: str
    extension: str
    size: int
    info: object  # ml_core VideoInfo


def check_video(source, name=None):
    """Check an upload (a Django UploadedFile) or a file path; raise ValidationError or return
    a CheckedVideo. `name` is the client's file name (default: the upload's or the path's)."""
    is_path = isinstance(source, str | os.PathLike)
    name = name or (Path(source).name if is_path else source.name)
    original_name = validators.clean_display_name(name)
    # Cheap checks first: the content probe only runs on a plausible file.
    extension = validators.validate_extension(name)
    size = os.path.getsize(source) if is_path else source.size
    validators.validate_size(size)
    info = validators.probe_video(source, extension)
    validators.validate_is_video(info)
    validators.validate_duration(info)
    return CheckedVideo(original_name, extension, size, info)


def store_video(owner, source, frames, original_name=None, *, checked=None):
    """Check the video (unless `checked` says it already was), store a copy under a server-chosen
    name, create the submission and put it in line. A broker outage never loses the upload.

    Raises media_files.StorageError when the storage is full or refuses the file; then nothing of
    it is left behind."""
    checked = checked or check_video(source, original_name)
    submission = Submission(owner=owner, frames_requested=frames)
    save_checked_video(submission, source, checked, submission.save)
    try:
        services.enqueue_analysis(submission)
    except Exception:
        # enqueue_analysis promises not to raise; if it ever does, the upload is still saved
        # and the periodic requeue picks it up.
        logger.exception("enqueue failed for submission %s", submission.pk)
    return submission


def save_checked_video(submission, source, checked, save_row):
    """Write a checked video into `submission`'s folder, then call `save_row()` to record it.

    Shared by uploads and fetched links (detector.links), so both store a video the same way.
    When writing fails, or `save_row()` raises or returns False (the row is gone), the folder is
    deleted; returns False in that last case. Raises media_files.StorageError for a full or
    refusing storage."""
    submission.original_name = checked.original_name
    submission.size_bytes = checked.size
    submission.duration_seconds = getattr(checked.info, "duration", None)
    submission._stored_extension = checked.extension
    folder = media_files.submission_folder(submission.public_id)
    try:
        # The name passed here is ignored by upload_to apart from the extension set above.
        if isinstance(source, str | os.PathLike):
            with open(source, "rb") as f:
                submission.video.save(f"video{checked.extension}", File(f), save=False)
        else:
            submission.video.save(f"video{checked.extension}", source, save=False)
        saved = save_row() is not False
    except Exception as exc:
        # Whatever was written (a copy cut short by a full disk included) is in this folder.
        media_files.delete_folder(submission.video.storage, folder)
        if isinstance(exc, OSError):
            logger.error("could not store an upload in media storage: %s", exc)
            raise media_files.StorageError(full=media_files.is_full(exc)) from exc
        raise
    if not saved:
        media_files.delete_folder(submission.video.storage, folder)
    return saved
