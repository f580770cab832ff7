"""The submission lifecycle outside the worker: enqueue, re-run, delete, retention.

Nothing here may lose a submission. The row is the source of truth; a broker message is only a
nudge. So publishing never raises (a broker outage leaves the row queued with no
`dispatched_at`) and worker.recovery re-sends whatever a message should have started but did not.
The worker's claim (worker.claims) makes a duplicate message harmless.
"""

import logging
from datetime import timedelta
from functools import partial

from celery import current_app
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .models import DetectorModel, FrameImage, Submission

logger = logging.getLogger(__name__)

Status, Stage = Submission.Status, Submission.Stage

# Sent by name: detector.tasks imports the worker, which imports this module.
ANALYZE_TASK = "detector.tasks.analyze_submission"


def model_for(submission):
    """The DetectorModel a run of this submission uses: the requested one, else the active one."""
    if submission.requested_detector_id:
        requested = DetectorModel.objects.filter(pk=submission.requested_detector_id).first()
        if requested is not None:
            return requested
    return DetectorModel.active()


def enqueue_analysis(submission):
    """Put the submission in line and send its job once the surrounding transaction commits.

    With no detector model yet it waits in `waiting_model` and nothing is sent; installing or
    activating a model starts it. Never raises because the broker is down.
    """
    has_model = model_for(submission) is not None
    now = timezone.now()
    submission.status = Status.QUEUED
    submission.stage = Stage.WAITING if has_model else Stage.WAITING_MODEL
    submission.progress = 0
    submission.error_message = ""
    submission.enqueued_at = now
    submission.dispatched_at = None
    submission.claim_token = ""
    submission.heartbeat_at = None
    submission.started_at = None
    submission.finished_at = None
    fields = ["status", "stage", "progress", "error_message", "enqueued_at", "dispatched_at"]
    fields += ["claim_token", "heartbeat_at", "started_at", "finished_at", "updated_at"]
    submission.save(update_fields=fields)
    if has_model:
        dispatch_on_commit(submission.pk)


def dispatch_on_commit(submission_id):
    # Task.delay_on_commit, plus a safety net: a publish error after commit must not turn a
    # saved upload into an error page.
    transaction.on_commit(partial(dispatch, submission_id))


def dispatch(submission_id):
    """Send the job now; on success record `dispatched_at`. Returns True when sent."""
    try:
        current_app.tasks[ANALYZE_TASK].apply_async(args=[submission_id])
    except Exception:
        logger.warning(
            "could not send analysis job for submission %s (broker unreachable?); it stays queued "
            "and requeue_stuck will send it",
            submission_id,
            exc_info=True,
        )
        return False
    Submission.objects.filter(pk=submission_id, status=Status.QUEUED).update(dispatched_at=timezone.now())
    return True


def rerun_analysis(submission, detector=None):
    """Analyse a finished or failed submission again; earlier Result rows stay as history.

    `detector`: a DetectorModel to use for this run (None: the active model at run time).
    Does nothing when the submission is already queued or running.
    Raises ValueError when its video has been purged.
    """
    if submission.status in (Status.QUEUED, Status.RUNNING):
        return
    if submission.media_purged_at or not submission.video:
        raise ValueError("The video of this submission has been removed, so it cannot be analysed again.")
    with transaction.atomic():
        submission.requested_detector = detector
        submission.attempts = 0
        submission.save(update_fields=["requested_detector", "attempts", "updated_at"])
        enqueue_analysis(submission)


def queue_position(submission):
    """1-based position among queued submissions (oldest in line first), None when not queued."""
    if submission.status != Status.QUEUED:
        return None
    since = submission.enqueued_at or submission.created_at
    ahead = Submission.objects.filter(status=Status.QUEUED).filter(
        Q(enqueued_at__lt=since) | Q(enqueued_at=since, pk__lt=submission.pk)
    )
    return ahead.count() + 1


def submission_file_names(submission):
    """Storage names of every file a submission owns (video, crops, overlays)."""
    names = [submission.video.name] if submission.video else []
    for crop, overlay in FrameImage.objects.filter(result__submission=submission).values_list(
        "crop", "overlay"
    ):
        names += [name for name in (crop, overlay) if name]
    return names


def delete_files(storage, names):
    for name in names:
        try:
            storage.delete(name)
        except Exception:
            logger.warning("could not delete %s from media storage", name, exc_info=True)


def delete_submission(submission):
    """Delete the submission, its results and all their files (through the storage API)."""
    storage = submission.video.storage
    names = submission_file_names(submission)
    with transaction.atomic():
        submission.delete()
        # Files go only once the rows are gone for good; a worker still running this job
        # notices the row is missing when it saves and removes what it wrote.
        transaction.on_commit(partial(delete_files, storage, names))


def start_waiting_submissions():
    """Send the jobs of submissions that were waiting for a detector model. Returns how many."""
    if DetectorModel.active() is None:
        return 0
    ids = list(
        Submission.objects.filter(status=Status.QUEUED, stage=Stage.WAITING_MODEL).values_list(
            "pk", flat=True
        )
    )
    Submission.objects.filter(pk__in=ids, status=Status.QUEUED, stage=Stage.WAITING_MODEL).update(
        stage=Stage.WAITING, updated_at=timezone.now()
    )
    for pk in ids:
        dispatch_on_commit(pk)
    return len(ids)


def purge_media(older_than_days, *, dry_run=False):
    """Delete videos, crops and overlays of finished submissions older than N days; keep verdicts.

    Returns (submissions purged, files deleted).
    """
    cutoff = timezone.now() - timedelta(days=older_than_days)
    candidates = Submission.objects.filter(
        status__in=[Status.DONE, Status.FAILED], created_at__lt=cutoff, media_purged_at__isnull=True
    )
    purged = files = 0
    for submission in candidates.iterator():
        names = submission_file_names(submission)
        purged += 1
        files += len(names)
        if dry_run:
            continue
        storage = submission.video.storage
        with transaction.atomic():
            FrameImage.objects.filter(result__submission=submission).update(crop="", overlay="")
            Submission.objects.filter(pk=submission.pk).update(video="", media_purged_at=timezone.now())
        delete_files(storage, names)
    return purged, files
