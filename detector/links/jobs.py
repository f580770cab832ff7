"""The fetch job (Celery queue CELERY_FETCH_QUEUE, never the GPU's): a link's media to a queued
analysis, through exactly the path an upload takes (uploads.check_video, save_checked_video,
services.enqueue_analysis).

Safe to deliver any number of times: the job claims its row with one conditional UPDATE
(fetching, unclaimed or its claim stale -> claimed by this run); every later write is
conditional on that claim. Every failure ends the row FAILED with its own message and keeps no
bytes: the download lives in a temporary file until it has passed the upload checks.
"""

import logging
import mimetypes
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from ml_core.constants import VIDEO_TYPES

from .. import media_files, services, uploads, validators
from ..models import Submission
from . import client
from .errors import LinkError, TookTooLong
from .submit import dispatch_fetch

logger = logging.getLogger(__name__)

Status, Stage = Submission.Status, Submission.Stage
PROGRESS_EVERY_SECONDS = 0.5


class ClaimLost(Exception):
    """The row was deleted or taken over while this run fetched."""


def claim_lease():
    """A claimed fetch whose last sign of life is older than this is dead: every live fetch ends
    within LINK_FETCH_SECONDS (the policy's deadline)."""
    return timedelta(seconds=settings.LINK_FETCH_SECONDS + 60)


def too_large_message(size=None):
    limit = validators.describe_size(settings.UPLOAD_MAX_BYTES)
    if size:
        shown = f"is {validators.describe_size(size)}; the limit is {limit}"
    else:
        shown = f"is larger than the {limit} limit"
    return f"This video {shown}. Download a shorter or smaller version and upload it."


def too_long_message(seconds):
    return (
        f"This video is {validators.describe_duration(seconds)} long; the limit is "
        f"{validators.describe_duration(settings.UPLOAD_MAX_SECONDS)}. "
        "Download the part with the face and upload it."
    )


def _extension(info, content_type):
    if info.extension:
        return info.extension
    guessed = mimetypes.guess_extension((content_type or "").split(";")[0].strip().lower()) or ""
    # Unknown: the content probe decides whether it is a video at all; .mp4 only names the file.
    return guessed if guessed in VIDEO_TYPES else ".mp4"


class FetchJob:
    def __init__(self, submission_id):
        self.submission_id = submission_id
        self.token = f"fetch:{uuid.uuid4().hex}"
        self._last_progress = 0.0

    def _mine(self):
        return Submission.objects.filter(
            pk=self.submission_id, status=Status.FETCHING, claim_token=self.token
        )

    def take_claim(self):
        now = timezone.now()
        claimable = Q(claim_token="") | Q(heartbeat_at__lt=now - claim_lease())
        return bool(
            Submission.objects.filter(pk=self.submission_id, status=Status.FETCHING)
            .filter(claimable)
            .update(
                claim_token=self.token,
                heartbeat_at=now,
                started_at=now,
                stage=Stage.FETCHING,
                progress=0,
                fetch_bytes=0,
                fetch_total_bytes=None,
                fetch_attempts=F("fetch_attempts") + 1,
                updated_at=now,
            )
        )

    def fail(self, message):
        """End the run FAILED with `message`, unless the claim is gone. Returns True when written."""
        now = timezone.now()
        return bool(
            self._mine().update(
                status=Status.FAILED,
                error_message=message,
                claim_token="",
                heartbeat_at=None,
                finished_at=now,
                updated_at=now,
            )
        )

    def progress(self, received, declared):
        now = time.monotonic()
        if now - self._last_progress < PROGRESS_EVERY_SECONDS and (declared is None or received < declared):
            return
        self._last_progress = now
        percent = min(99, int(received * 100 / declared)) if declared else 0
        updated = self._mine().update(
            fetch_bytes=received,
            fetch_total_bytes=declared,
            progress=percent,
            heartbeat_at=timezone.now(),
            updated_at=timezone.now(),
        )
        if not updated:
            raise ClaimLost()

    def run(self):
        """Fetch, check and store the video, then queue its analysis. Raises LinkError,
        ValidationError (the upload checks), ClaimLost or media_files.StorageError."""
        from . import extract  # yt-dlp (~20 MB, 0.2 s): loaded only by the processes that fetch

        submission = Submission.objects.get(pk=self.submission_id)
        if submission.fetch_attempts > settings.DETECTOR_MAX_ATTEMPTS:
            raise LinkError("Fetching this link stopped its worker several times, so it was given up.")
        policy = client.Policy(
            allow_private=settings.LINK_ALLOW_PRIVATE_ADDRESSES,
            stall_seconds=settings.LINK_STALL_SECONDS,
            deadline=time.monotonic() + settings.LINK_FETCH_SECONDS,
        )
        limits = extract.Limits(
            max_bytes=settings.UPLOAD_MAX_BYTES,
            max_seconds=settings.UPLOAD_MAX_SECONDS,
            too_large_message=too_large_message,
            too_long_message=too_long_message,
        )
        info = extract.extract(submission.source_url, policy=policy, limits=limits)
        temp_dir = settings.FILE_UPLOAD_TEMP_DIR or None
        with tempfile.NamedTemporaryFile(prefix="link-", dir=temp_dir) as temp:
            _, size, sha256, content_type = client.download(
                info.media_url,
                temp,
                policy=policy,
                max_bytes=settings.UPLOAD_MAX_BYTES,
                headers=info.http_headers,
                progress=self.progress,
                too_large_message=too_large_message(),
            )
            temp.flush()
            extension = _extension(info, content_type)
            # The probe picks the decoder from the content; the name only carries the extension.
            path = Path(temp.name)
            checked = uploads.check_video(path, name=f"{info.title or submission.original_name}{extension}")
            submission.source_final_url = info.final_url[:2000]
            submission.source_site = info.site
            submission.source_post_id = info.post_id
            submission.source_title = info.title
            submission.source_uploader = info.uploader
            submission.fetched_sha256 = sha256
            submission.fetched_at = timezone.now()
            submission.fetch_bytes = size

            def save_row():
                with transaction.atomic():
                    if not self._mine().select_for_update().exists():
                        return False
                    submission.save()
                    services.enqueue_analysis(submission)  # status queued; sent once committed
                return True

            if not uploads.save_checked_video(submission, path, checked, save_row):
                raise ClaimLost()
        return submission


def run_fetch(submission_id):
    """The job's whole life; returns what happened, for the worker's log."""
    job = FetchJob(submission_id)
    if not job.take_claim():
        return "skipped"
    try:
        job.run()
        return "done"
    except ClaimLost:
        logger.warning("submission %s: fetch claim lost (deleted or taken over); nothing kept", submission_id)
        return "lost"
    except LinkError as exc:
        logger.info("submission %s: link refused or failed: %s (%s)", submission_id, exc.code, exc)
        job.fail(exc.message)
    except ValidationError as exc:
        # The fetched bytes failed the upload checks (not a video, too long, ...).
        job.fail(" ".join(exc.messages))
    except media_files.StorageError as exc:
        job.fail(exc.message)
    except SoftTimeLimitExceeded:
        job.fail(TookTooLong.message)
    except Exception:
        logger.exception("submission %s: unexpected error while fetching its link", submission_id)
        submission = Submission.objects.get(pk=submission_id)
        job.fail(services.unexpected_error_message(submission, "fetching this link"))
    return "failed"


def resend_lost_fetches():
    """Recovery (beat, with requeue_stuck): re-send fetches whose message never went out or whose
    run died (no sign of life within the lease). Returns how many were sent."""
    stale = timezone.now() - claim_lease()
    lost = Submission.objects.filter(status=Status.FETCHING).filter(
        Q(claim_token="", dispatched_at__isnull=True)
        | Q(claim_token="", dispatched_at__lt=stale)
        | Q(heartbeat_at__lt=stale)
    )
    ids = list(lost.values_list("pk", flat=True))
    for pk in ids:
        dispatch_fetch(pk)
    return len(ids)
