"""Celery jobs, thin wrappers over detector.worker. Their names are in settings (routes, beat)
and in messages already queued, so they never change.

`analyze_submission` runs on the GPU hosts; it relies only on the database, the broker and
Django's storage API, so web and workers can live on different machines. It is safe to deliver
any number of times: see worker.claims.
"""

import logging
import socket

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from ml_core.errors import MlCoreError

from . import media_files, services
from .links import jobs as link_jobs
from .models import Ping
from .worker import recovery
from .worker.claims import ClaimLost
from .worker.job import AnalysisJob

logger = logging.getLogger(__name__)

# Worth another try later: the database, the storage or the GPU was briefly unavailable.
TRANSIENT_ERRORS = (OperationalError, InterfaceError, ConnectionError, TimeoutError)
MAX_RETRIES = 3


def backoff(retries):
    return min(300, 15 * 2**retries)


@shared_task(name="detector.tasks.ping")
def ping(token):
    """Trivial job for the queue smoke test: proves a worker reaches the database."""
    Ping.objects.filter(token=token).update(handled_by=f"{socket.gethostname()}", handled_at=timezone.now())


@shared_task(name="detector.tasks.requeue_stuck")
def requeue_stuck():
    """Periodic recovery (beat): re-send jobs that were never sent, got lost, or lost their worker."""
    counts = recovery.requeue_stuck()
    counts["lost_fetches"] = link_jobs.resend_lost_fetches()
    if any(counts.values()):
        logger.info("requeue_stuck: %s", counts)
    return counts


@shared_task(name="detector.tasks.sweep_media")
def sweep_media():
    """Periodic (beat): remove files under the submissions' folders that no row references."""
    removed = services.sweep_orphan_media(settings.MEDIA_ORPHAN_GRACE_SECONDS)
    if removed:
        logger.info("sweep_media removed %s unreferenced files: %s", len(removed), ", ".join(removed))
    return len(removed)


@shared_task(name="detector.tasks.fetch_link", acks_late=True, reject_on_worker_lost=True)
def fetch_link(submission_id):
    """Fetch a link's video (queue CELERY_FETCH_QUEUE), then queue its analysis; safe to deliver
    any number of times: see links.jobs."""
    return link_jobs.run_fetch(submission_id)


@shared_task(
    bind=True,
    name="detector.tasks.analyze_submission",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=MAX_RETRIES,
)
def analyze_submission(self, submission_id):
    """Analyse one submission; safe to deliver any number of times."""
    job = AnalysisJob(submission_id)
    try:
        claimed = job.take_claim()
    except TRANSIENT_ERRORS as exc:  # e.g. the database is restarting: nothing claimed yet
        raise self.retry(exc=exc, countdown=backoff(self.request.retries)) from exc
    if not claimed:
        return "skipped"
    try:
        job.run()
        return "done"
    except ClaimLost:
        logger.warning("submission %s: claim lost (taken over or deleted); nothing saved", submission_id)
        job.delete_stored_files()
        return "lost"
    except MlCoreError as exc:
        # Typed errors about the video itself: the user can act on the message.
        logger.info("submission %s failed: %s (%s)", submission_id, exc.code, exc)
        job.fail(exc.user_message)
        return "failed"
    except SoftTimeLimitExceeded:
        logger.error("submission %s hit the soft time limit", submission_id)
        job.fail(
            "The analysis took too long and was stopped at the time limit. Try a shorter clip or "
            "fewer frames (a GPU worker handles long videos much faster)."
        )
        return "failed"
    except TRANSIENT_ERRORS as exc:
        if self.request.retries < self.max_retries and job.claim.release():
            countdown = backoff(self.request.retries)
            logger.warning("submission %s: transient error %r; retry in %ss", submission_id, exc, countdown)
            raise self.retry(exc=exc, countdown=countdown) from exc
        logger.exception("submission %s: transient error, retries used up", submission_id)
        job.fail(services.unexpected_error_message(job.submission, "analysing this video"))
        return "failed"
    except Exception as exc:
        logger.exception("submission %s: unexpected error", submission_id)
        if media_files.is_full(exc):  # e.g. ENOSPC while saving the crops: say so, not "our side"
            job.fail(media_files.job_full_message(job.submission))
        else:
            job.fail(services.unexpected_error_message(job.submission, "analysing this video"))
        return "failed"
    finally:
        job.claim.stop_heartbeat()
        job.clean_up()
