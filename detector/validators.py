"""Upload validation shared by the upload page and the API: name, extension, size, content, duration.

Messages are written for the person uploading: what is wrong and what to do about it.
"""

import logging
import os
import re
import tempfile
import unicodedata
from contextlib import contextmanager

from django.conf import settings
from django.core.exceptions import ValidationError

from ml_core.constants import VIDEO_FORMATS, VIDEO_TYPES
from ml_core.errors import MlCoreError, NotAVideo

logger = logging.getLogger(__name__)

DISPLAY_NAME_MAX = 120
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def describe_size(num_bytes):
    """200 MB, 1.5 GB, 12 KB: for messages."""
    value = float(num_bytes)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "bytes" else f"{value:.1f} {unit}".replace(".0 ", " ")
        value /= 1024
    return f"{num_bytes} bytes"  # pragma: no cover


def describe_duration(seconds):
    seconds = int(round(seconds))
    minutes, seconds = divmod(seconds, 60)
    if not minutes:
        return f"{seconds} s"
    return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"


def clean_display_name(name, max_length=DISPLAY_NAME_MAX):
    """The client's file name reduced to harmless display text.

    Strips any directory part (either slash style), control characters and NUL, collapses
    whitespace and caps the length while keeping the extension. Never used as a path.
    """
    name = str(name or "")
    name = re.split(r"[\\/]", name)[-1]
    name = _CONTROL.sub("", name)
    # Drop invisible format characters too (e.g. right-to-left overrides that disguise extensions).
    name = "".join(ch for ch in name if unicodedata.category(ch) != "Cf")
    name = " ".join(name.split()).strip(". ")
    if len(name) > max_length:
        stem, ext = os.path.splitext(name)
        ext = ext[:10]
        name = stem[: max_length - len(ext) - 1] + "…" + ext
    return name or "video"


def validate_extension(name):
    """Return the lower-case allow-listed extension of `name`, or raise ValidationError."""
    ext = os.path.splitext(str(name or ""))[1].lower()
    if ext not in VIDEO_TYPES:
        shown = f"“{ext}” files are" if ext else "Files without an extension are"
        raise ValidationError(
            f"{shown} not accepted. Upload a video ending in {VIDEO_FORMATS}.",
            code="extension",
        )
    return ext


def validate_size(size):
    limit = settings.UPLOAD_MAX_BYTES
    if size <= 0:
        raise ValidationError("The file is empty. Choose the video again and re-upload it.", code="empty")
    if size > limit:
        shown, limit_shown = describe_size(size), describe_size(limit)
        if shown == limit_shown:
            # Just over the limit, both round to the same figure: give the exact byte counts.
            shown, limit_shown = f"{size:,} bytes", f"{limit:,} bytes ({limit_shown})"
        raise ValidationError(
            f"This file is {shown}; the limit is {limit_shown}. "
            "Trim the video or re-encode it at a lower bitrate, then upload it again.",
            code="too_large",
        )


@contextmanager
def local_path(source, extension):
    """A path the decoder can open: a file path as is; an upload's temporary file when Django
    spooled it to disk; else (small uploads kept in memory) a temporary copy."""
    if isinstance(source, str | os.PathLike):
        yield os.fspath(source)
        return
    try:
        if hasattr(source, "temporary_file_path"):
            yield source.temporary_file_path()
            return
        with tempfile.NamedTemporaryFile(suffix=extension, dir=settings.FILE_UPLOAD_TEMP_DIR or None) as tmp:
            source.seek(0)
            for chunk in source.chunks():
                tmp.write(chunk)
            tmp.flush()
            yield tmp.name
    finally:
        source.seek(0)


def probe_video(source, extension):
    """Open an upload or a file path as a video with ml_core.media.video.probe; return its VideoInfo."""
    from ml_core.media import video

    try:
        with local_path(source, extension) as path:
            return video.probe(path)
    except MlCoreError as exc:
        raise ValidationError(exc.user_message, code=exc.code) from exc
    except Exception as exc:
        # Decoders raise all sorts on hostile input; whatever it is, it is not a video we can use.
        logger.warning("probe failed on an upload: %r", exc)
        raise ValidationError(NotAVideo.user_message, code=NotAVideo.code) from exc


# Demuxers that FFmpeg uses for still or animated images: they "open" as a one-stream file, but a
# photo or a GIF renamed to .mp4 is not a video anyone meant to upload.
IMAGE_CONTAINERS = {"image2", "gif", "apng", "webp", "ico", "bmp", "tiff", "tga", "svg"}


def validate_is_video(info):
    container = (getattr(info, "container", "") or "").lower()
    if container in IMAGE_CONTAINERS or container.endswith("_pipe"):
        kind = container.removesuffix("_pipe").upper() or "image"
        raise ValidationError(
            f"This file is an image ({kind}), not a video. Upload a video file ({VIDEO_FORMATS}).",
            code=NotAVideo.code,
        )


def validate_duration(info):
    limit = settings.UPLOAD_MAX_SECONDS
    duration = getattr(info, "duration", None) or 0.0
    if duration > limit:
        raise ValidationError(
            f"This video is {describe_duration(duration)} long; the limit is {describe_duration(limit)}. "
            "Trim it to the part with the face and upload it again.",
            code="too_long",
        )


def content_length_missing(request):
    """True when the request declares no body length, as a chunked upload does.

    Django reads no body without a Content-Length, so the file would seem to be missing.
    """
    return not request.META.get("CONTENT_LENGTH")


LENGTH_REQUIRED_MESSAGE = (
    "This upload was sent without its length (a chunked upload), so the file could not be read. "
    "Send it with a Content-Length header, as a browser form and curl -F video=@clip.mp4 do."
)


def content_length_too_large(request):
    """True when the request body is declared larger than any acceptable upload.

    Lets the views refuse an oversized upload before Django reads (and spools) its body.
    """
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return False
    # Room for the multipart envelope and the other fields.
    return declared > settings.UPLOAD_MAX_BYTES + 64 * 1024
