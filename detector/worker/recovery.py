"""Recovery: re-send jobs that a message should have started but did not (beat runs it through
detector.tasks.requeue_stuck; so does `manage.py requeue_stuck`).
"""

import logging
from datetime import timedelta

from celery import current_app
from django.conf import settings
from django.utils import timezone
from kombu.exceptions import ChannelError

from .. import services
from ..models import DetectorModel, Submission
from .claims import fail_submission, give_back, holder_is_gone, max_attempts, too_many_attempts_message

logger = logging.getLogger(__name__)

Status, Stage = Submission.Status, Submission.Stage


def stuck_after():
    return timedelta(seconds=settings.STUCK_AFTER_SECONDS)


def queued_lease():
    """A queued job sent this long ago, while no job message waits in the broker, lost its message."""
    return timedelta(seconds=settings.QUEUED_RESEND_SECONDS)


def jobs_waiting_in_broker():
    """How many analysis messages wait in the broker, not yet handed to a worker; None when the
    broker cannot say (unreachable). An emptied Redis holds no queue at all: 0."""
    app = current_app
    queue = app.amqp.router.route({}, services.ANALYZE_TASK)["queue"].name
    try:
        with app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=3)
            try:
                return conn.default_channel.queue_declare(queue=queue, passive=True).message_count
            except ChannelError:  # no such queue
                return 0
    except Exception:
        logger.warning("could not count the jobs waiting in queue %s", queue, exc_info=True)
        return None


def requeue_stuck(older_than=None):
    """Re-send jobs that should be running but are not. Returns {reason: count}.

    - queued but never handed to the broker (it was down at upload time): sent now;
    - queued, sent more than QUEUED_RESEND_SECONDS ago while the broker's job queue is empty
      (Redis restarted empty, or the queue was purged): its message is gone, sent again. A job
      waiting behind others still has its message in the queue and is left alone;
    - queued, sent more than `older_than` ago (default STUCK_AFTER_SECONDS): sent again whatever
      the broker holds (a queue that never empties);
    - waiting for a model while one is active: sent;
    - running, but its worker is gone (no heartbeat within the lease, or a dead process on this
      host): put back in line, or FAILED once it has used up its attempts.
    A duplicate message is harmless: the worker's claim turns it into a no-op.
    """
    now = timezone.now()
    deadline = now - (stuck_after() if older_than is None else timedelta(seconds=older_than))
    counts = {
        "never_sent": 0,
        "lost_queued": 0,
        "stale_queued": 0,
        "waiting_model": 0,
        "dead_worker": 0,
        "gave_up": 0,
    }
    has_model = DetectorModel.active() is not None

    counts["waiting_model"] = services.start_waiting_submissions()
    queued = (
        Submission.objects.filter(status=Status.QUEUED)
        .exclude(stage=Stage.WAITING_MODEL)
        .order_by("enqueued_at", "pk")  # oldest first: re-sent jobs keep their turn
    )
    to_send, maybe_lost = [], []
    rows = queued.values_list("pk", "dispatched_at", "updated_at", "requested_detector_id")
    for pk, dispatched_at, updated_at, requested in rows:
        if not has_model and requested is None:
            Submission.objects.filter(pk=pk, status=Status.QUEUED).update(stage=Stage.WAITING_MODEL)
            continue
        if dispatched_at is None:
            counts["never_sent"] += 1
        elif dispatched_at < deadline:
            counts["stale_queued"] += 1
        elif max(dispatched_at, updated_at) < now - queued_lease():
            # Put back in line (updated_at) recently: a retry's delayed message is on its way.
            maybe_lost.append(pk)
            continue
        else:
            continue
        to_send.append(pk)
    if maybe_lost and jobs_waiting_in_broker() == 0:
        counts["lost_queued"] = len(maybe_lost)
        to_send += maybe_lost

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
