"""Private media: videos, face crops and Grad-CAM overlays, only for their owner (or staff).

Everyone else, anonymous visitors included, gets a 404. Files are read through the storage
API (so remote storage works) and streamed; with MEDIA_ACCEL_REDIRECT_PREFIX set, nginx
sends them instead (X-Accel-Redirect to an `internal` location). The video view answers
single HTTP Range requests so the browser's player can seek.
"""

import os
import re
from urllib.parse import quote

from django.conf import settings
from django.http import FileResponse, Http404, HttpResponse, StreamingHttpResponse
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_safe

from ml_core.constants import VIDEO_TYPES

from ..access import get_frame_image_for_user, get_submission_for_user
from ..tokens import user_from_authorization

IMAGE_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"}
CHUNK = 64 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _viewer(request):
    # API clients follow the crop links in API responses with their token; browsers use the session.
    if "HTTP_AUTHORIZATION" in request.META:
        user = user_from_authorization(request)
        if user is None:
            raise Http404("No such file.")
        return user
    return request.user


def _private_headers(response, content_type, download_name):
    response["Content-Type"] = content_type
    response["Content-Disposition"] = content_disposition_header(False, download_name)
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, max-age=3600"
    # Never let a shared cache key these on anything but the full request.
    response["Vary"] = "Cookie, Authorization"
    return response


def _safe_name(stem, extension):
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", os.path.splitext(stem or "")[0]).strip("._")[:60]
    return f"{stem or 'file'}{extension}"


def parse_range(header, size):
    """(start, end) inclusive for one `bytes=` range; None to ignore it; ValueError if unsatisfiable."""
    match = _RANGE.match(header.strip()) if header else None
    if not match:
        return None  # absent, malformed or multi-range: send the whole file (RFC 9110 allows that)
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        suffix = int(last)
        if suffix == 0:
            raise ValueError("empty suffix range")
        return max(0, size - suffix), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        raise ValueError("range outside the file")
    return start, end


def _read_range(handle, start, length):
    try:
        handle.seek(start)
        remaining = length
        while remaining > 0:
            data = handle.read(min(CHUNK, remaining))
            if not data:
                break
            remaining -= len(data)
            yield data
    finally:
        handle.close()


def serve_private_file(request, field_file, content_type, download_name, *, allow_range=False):
    """Send one stored file with private headers: via nginx when configured, else streamed."""
    if not field_file:
        raise Http404("No such file.")
    storage, name = field_file.storage, field_file.name
    prefix = settings.MEDIA_ACCEL_REDIRECT_PREFIX
    if prefix:
        response = HttpResponse()
        response["X-Accel-Redirect"] = prefix.rstrip("/") + "/" + quote(name)
        return _private_headers(response, content_type, download_name)
    try:
        size = storage.size(name)
        handle = storage.open(name, "rb")
    except (FileNotFoundError, OSError):
        raise Http404("No such file.") from None

    byte_range = None
    if allow_range:
        try:
            byte_range = parse_range(request.headers.get("Range", ""), size)
        except ValueError:
            handle.close()
            response = HttpResponse(status=416)
            response["Content-Range"] = f"bytes */{size}"
            return _private_headers(response, content_type, download_name)

    if byte_range is None:
        response = FileResponse(handle, content_type=content_type)
        response["Content-Length"] = str(size)
    else:
        start, end = byte_range
        length = end - start + 1
        response = StreamingHttpResponse(_read_range(handle, start, length), status=206)
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
        response["Content-Length"] = str(length)
    if allow_range:
        response["Accept-Ranges"] = "bytes"
    return _private_headers(response, content_type, download_name)


@require_safe
def submission_video(request, public_id):
    submission = get_submission_for_user(_viewer(request), public_id)
    if not submission.video or submission.media_purged_at:
        raise Http404("The video has been deleted.")
    extension = os.path.splitext(submission.video.name)[1].lower()
    content_type = VIDEO_TYPES.get(extension, "application/octet-stream")
    name = _safe_name(submission.original_name, extension if extension in VIDEO_TYPES else ".bin")
    return serve_private_file(request, submission.video, content_type, name, allow_range=True)


@require_safe
def submission_frame_image(request, public_id, frame_id, kind):
    if kind not in ("crop", "overlay"):
        raise Http404("No such image.")
    submission, frame = get_frame_image_for_user(_viewer(request), public_id, frame_id)
    field_file = frame.crop if kind == "crop" else frame.overlay
    if not field_file or submission.media_purged_at:
        raise Http404("No such image.")
    extension = os.path.splitext(field_file.name)[1].lower()
    content_type = IMAGE_TYPES.get(extension, "application/octet-stream")
    name = f"frame-{frame.frame_index}-{kind}{extension if extension in IMAGE_TYPES else '.bin'}"
    return serve_private_file(request, field_file, content_type, name)
