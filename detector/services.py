"""The submission lifecycle outside the worker: enqueue, re-run, delete, retention.

Nothing here may lose a submission. The row is the source of truth; a broker message is only a
nudge. So publishing never raises (a broker outage leaves the row queued with no
`dispatched_at`) and worker.recovery re-sends whatever a message should have started but did not.
The worker's claim (worker.claims) makes a duplicate message harmless.
"""

import logging
import uuid
from datetime import timedelta
from functools import partial

from celery import current_app
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from . import media_files
from .models import FINISHED, DetectorModel, FrameImage, Submission

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


def unexpected_error_message(submission, doing):
    """What a person reads after an error we did not foresee (logged with its traceback)."""
    return (
        f"Something went wrong on our side while {doing}. The error has been logged; "
        f"if you contact support, mention reference {submission.public_id}."
    )


def rerun_analysis(submission, detector=None):
    """Analyse a finished or failed submission again; earlier Result rows stay as history.

    `detector`: a DetectorModel to use for this run (None: the active model at run time).
    Returns False, doing nothing, while it is not finished (fetching, queued or running).
    Raises ValueError when its video has been purged.
    """
    if not submission.is_finished:
        return False
    if submission.media_purged_at or not submission.video:
        raise ValueError("The video of this submission has been removed, so it cannot be analysed again.")
    with transaction.atomic():
        submission.requested_detector = detector
        submission.attempts = 0
        submission.save(update_fields=["requested_detector", "attempts", "updated_at"])
        enqueue_analysis(submission)
    return True


def queue_position(submission):
    """1-based position among queued submissions (oldest in line first), None when not queued."""
    if submission.status != Status.QUEUED:
        return None
    since = submission.enqueued_at or submission.created_at
    ahead = Submission.objects.filter(status=Status.QUEUED).filter(
        Q(enqueued_at__lt=since) | Q(enqueued_at=since, pk__lt=submission.pk)
    )
    return ahead.count() + 1


def referenced_file_names(submissions):
    """Storage names the rows of `submissions` (a queryset) reference: videos, crops, overlays."""
    names = set(submissions.exclude(video="").values_list("video", flat=True))
    for crop, overlay in FrameImage.objects.filter(result__submission__in=submissions).values_list(
        "crop", "overlay"
    ):
        names.update((crop, overlay))
    names.discard("")
    return names


def submission_file_names(submission):
    """Storage names of every file a submission's rows reference (video, crops, overlays)."""
    return sorted(referenced_file_names(Submission.objects.filter(pk=submission.pk)))


def media_storage():
    return Submission._meta.get_field("video").storage


def delete_submission(submission):
    """Delete the submission, its results and its whole media folder (through the storage API).

    The folder goes, not a list of names from rows: it also holds what no row recorded, e.g. the
    crops of an attempt killed while saving.
    """
    folder = media_files.submission_folder(submission.public_id)
    with transaction.atomic():
        submission.delete()
        # Files go only once the rows are gone for good; a worker still running this job
        # notices the row is missing when it saves and removes its attempt's folder.
        transaction.on_commit(partial(media_files.delete_folder, media_storage(), folder))


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
        status__in=FINISHED, created_at__lt=cutoff, media_purged_at__isnull=True
    )
    storage = media_storage()
    purged = files = 0
    for submission in candidates.iterator():
        folder = media_files.submission_folder(submission.public_id)
        purged += 1
        if dry_run:
            files += len(list(media_files.walk(storage, folder)))
            continue
        with transaction.atomic():
            FrameImage.objects.filter(result__submission=submission).update(crop="", overlay="")
            Submission.objects.filter(pk=submission.pk).update(video="", media_purged_at=timezone.now())
        files += len(media_files.delete_folder(storage, folder))
    return purged, files


def sweep_orphan_media(grace_seconds, *, dry_run=False):
    """Delete files under the submissions' folders that no row references, once older than
    `grace_seconds`; returns their names (those that would go, with `dry_run`).

    They are what a crash leaves: the crops of an attempt killed while saving, an upload whose row
    was never saved, the folder of a submission deleted while its worker was still writing. The
    grace period must outlast a job (its images are saved before their rows commit).
    """
    storage = media_storage()
    cutoff = timezone.now() - timedelta(seconds=grace_seconds)
    try:
        folders, stray = storage.listdir(media_files.ROOT)
    except FileNotFoundError:
        return []
    unreferenced = [f"{media_files.ROOT}/{name}" for name in stray]
    for start in range(0, len(folders), 500):
        batch = folders[start : start + 500]
        referenced = _referenced_names(batch)
        for folder in batch:
            names = media_files.walk(storage, f"{media_files.ROOT}/{folder}")
            unreferenced += [name for name in names if name not in referenced]
    old = [name for name in unreferenced if _modified_before(storage, name, cutoff)]
    if dry_run:
        return old
    removed = media_files.delete_names(storage, old)
    media_files.prune_empty_folders(storage, media_files.ROOT, older_than=cutoff.timestamp())
    return removed


def _referenced_names(folder_names):
    """Names the rows reference among submissions whose folders are `folder_names`."""
    ids = []
    for name in folder_names:
        try:
            if str(uuid.UUID(name)) == name:
                ids.append(name)
        except ValueError:
            pass  # not a folder we made: nothing in it is referenced
    return referenced_file_names(Submission.objects.filter(public_id__in=ids))


def _modified_before(storage, name, cutoff):
    try:
        return storage.get_modified_time(name) < cutoff
    except FileNotFoundError:
        return False  # gone meanwhile
    except NotImplementedError:
        logger.warning("media storage cannot tell when %s was written; it is kept", name)
        return False
