"""Recovery: re-send jobs that a message should have started but did not (beat runs it through
detector.tasks.requeue_stuck; so does `manage.py requeue_stuck`).
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from .. import services
from ..models import DetectorModel, Submission
from .claims import fail_submission, give_back, holder_is_gone, max_attempts, too_many_attempts_message

logger = logging.getLogger(__name__)

Status, Stage = Submission.Status, Submission.Stage


def stuck_after():
    return timedelta(seconds=settings.STUCK_AFTER_SECONDS)


def requeue_stuck(older_than=None):
    """Re-send jobs that should be running but are not. Returns {reason: count}.

    - queued but never handed to the broker (it was down at upload time): sent now;
    - queued, sent more than `older_than` ago (default STUCK_AFTER_SECONDS): sent again;
    - waiting for a model while one is active: sent;
    - running, but its worker is gone (no heartbeat within the lease, or a dead process on this
      host): put back in line, or FAILED once it has used up its attempts.
    A duplicate message is harmless: the worker's claim turns it into a no-op.
    """
    now = timezone.now()
    deadline = now - (stuck_after() if older_than is None else timedelta(seconds=older_than))
    counts = {"never_sent": 0, "stale_queued": 0, "waiting_model": 0, "dead_worker": 0, "gave_up": 0}
    has_model = DetectorModel.active() is not None

    counts["waiting_model"] = services.start_waiting_submissions()
    queued = Submission.objects.filter(status=Status.QUEUED).exclude(stage=Stage.WAITING_MODEL)
    to_send = []
    for pk, dispatched_at, requested in queued.values_list("pk", "dispatched_at", "requested_detector_id"):
        if not has_model and requested is None:
            Submission.objects.filter(pk=pk, status=Status.QUEUED).update(stage=Stage.WAITING_MODEL)
            continue
        if dispatched_at is None:
            counts["never_sent"] += 1
        elif dispatched_at < deadline:
            counts["stale_queued"] += 1
        else:
            continue
        to_send.append(pk)

    for sub in Submission.objects.filter(status=Status.RUNNING).only(
        "pk", "claim_token", "heartbeat_at", "attempts"
    ):
        if not holder_is_gone(sub.claim_token, sub.heartbeat_at, now):
            continue
        stale = Submission.objects.filter(pk=sub.pk, status=Status.RUNNING, claim_token=sub.claim_token)
        if sub.attempts >= max_attempts():
            counts["gave_up"] += fail_submission(
                sub.pk, too_many_attempts_message(), claim_token=sub.claim_token
            )
            logger.error(
                "submission %s: worker died on each of %s attempts; marked failed", sub.pk, sub.attempts
            )
            continue
        # Conditional on the same claim: a worker that was only slow and heartbeats again keeps it.
        if give_back(stale):
            logger.warning("submission %s: its worker stopped (claim %s); re-queued", sub.pk, sub.claim_token)
            counts["dead_worker"] += 1
            to_send.append(sub.pk)

    for pk in to_send:
        services.dispatch_on_commit(pk)
    return counts
