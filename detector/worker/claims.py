"""The claim on a submission row: taking it, keeping it alive, giving it back, and telling
that its holder died.

Exactly-once, even with late acks and redelivery: a job claims its row with one conditional
UPDATE (queued -> running, attempts + 1, a claim token naming this process). A second delivery
finds nothing to claim. A delivery after the holder died takes the claim over. Every later write
is conditional on the token, so a worker that lost its claim can never save a second result.

A claim token names the process that claimed the row: host, PID namespace, PID, the process's
start time (so a reused PID does not look alive) and a random nonce. A holder is gone when its
heartbeat is older than the lease (any host), or at once when it was a process on this host, in
this PID namespace, that no longer exists (a SIGKILLed pool child, an OOM kill).
"""

import logging
import os
import socket
import threading
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import F, Q
from django.utils import timezone

from .. import services
from ..models import Submission

logger = logging.getLogger(__name__)

Status, Stage = Submission.Status, Submission.Stage

# Percentages the status page shows when each stage starts.
STAGE_PROGRESS = {
    Stage.DECODING: 5,
    Stage.FINDING_FACES: 15,
    Stage.CLASSIFYING: 55,
    Stage.EXPLAINING: 70,
    Stage.SAVING: 90,
}


def max_attempts():
    """Claims allowed per run before a job that keeps killing its worker is marked FAILED."""
    return settings.DETECTOR_MAX_ATTEMPTS


def too_many_attempts_message():
    return (
        f"The analysis stopped unexpectedly {max_attempts()} times in a row, so it was given up. "
        "The video may be unusual (very large frames or a damaged stream); try re-encoding it."
    )


def heartbeat_seconds():
    return settings.DETECTOR_HEARTBEAT_SECONDS


def lease():
    """A running job whose heartbeat is older than this is presumed dead."""
    return timedelta(seconds=settings.DETECTOR_LEASE_SECONDS)


def _pid_namespace():
    try:
        return os.readlink("/proc/self/ns/pid").removeprefix("pid:").strip("[]")
    except OSError:
        return ""


def _start_time(pid):
    """The process's start time in clock ticks since boot (Linux); "" when unknown or a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            # The command name (field 2) may contain spaces; fields after its ")" are fixed.
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return ""
    if len(fields) < 20 or fields[0] in ("Z", "X"):  # a killed process nobody has reaped yet
        return ""
    return fields[19]


def new_token():
    pid = os.getpid()
    return "|".join(
        [socket.gethostname(), _pid_namespace(), str(pid), _start_time(pid), uuid.uuid4().hex[:12]]
    )


def process_is_gone(token):
    """True only when we can prove the holder process no longer exists; False when unsure."""
    parts = token.split("|")
    if len(parts) != 5:
        return False
    host, namespace, pid, started, _ = parts
    if host != socket.gethostname() or not namespace or namespace != _pid_namespace() or not started:
        return False  # another machine or container: only the heartbeat can tell
    return _start_time(pid) != started


def holder_is_gone(token, heartbeat_at, now):
    if heartbeat_at is None or heartbeat_at < now - lease():
        return True
    return bool(token) and process_is_gone(token)


def fail_submission(submission_id, message, *, claim_token=None):
    """Mark FAILED with a user-facing message (only if still held by `claim_token` when given)."""
    rows = Submission.objects.filter(pk=submission_id)
    rows = rows.filter(claim_token=claim_token, status=Status.RUNNING) if claim_token else rows
    now = timezone.now()
    return rows.update(
        status=Status.FAILED,
        stage=Stage.FINISHED,
        error_message=message,
        finished_at=now,
        updated_at=now,
        claim_token="",
    )


def give_back(rows):
    """Put claimed rows back in line (queued, unclaimed); returns how many were. Callers filter
    `rows` on the claim they mean, so a holder that turned out alive keeps its row."""
    return rows.update(
        status=Status.QUEUED, stage=Stage.WAITING, claim_token="", progress=0, updated_at=timezone.now()
    )


class ClaimLost(Exception):
    """Another worker took this job over (ours was presumed dead) or the submission was deleted."""


class Heartbeat(threading.Thread):
    """Refreshes `heartbeat_at` while the job runs, so a live holder keeps its claim."""

    def __init__(self, submission_id, token):
        super().__init__(name=f"heartbeat-{submission_id}", daemon=True)
        self.submission_id, self.token = submission_id, token
        self.stopped = threading.Event()
        self.lost = False

    def run(self):
        try:
            while not self.stopped.wait(heartbeat_seconds()):
                try:
                    alive = Submission.objects.filter(
                        pk=self.submission_id, status=Status.RUNNING, claim_token=self.token
                    ).update(heartbeat_at=timezone.now())
                except DatabaseError:
                    logger.warning("heartbeat for submission %s failed", self.submission_id, exc_info=True)
                    continue
                if not alive:
                    self.lost = True
                    return
        finally:
            connection.close()  # this thread's own connection

    def stop(self):
        self.stopped.set()
        self.join(timeout=5)


class Claim:
    """This process's claim on one submission row, from `take` to `finish`, `release` or `fail`."""

    def __init__(self, submission_id):
        self.submission_id = submission_id
        self.token = new_token()
        self.heartbeat = None

    def mine(self):
        return Submission.objects.filter(pk=self.submission_id, status=Status.RUNNING, claim_token=self.token)

    def take(self):
        """Claim the row (or take it over from a dead holder). The claimed Submission, or None."""
        row = Submission.objects.filter(pk=self.submission_id).first()
        if row is None:
            logger.info("submission %s no longer exists; nothing to do", self.submission_id)
            return None
        now = timezone.now()
        claimable = Q(status=Status.QUEUED)
        if row.status == Status.RUNNING and holder_is_gone(row.claim_token, row.heartbeat_at, now):
            # Take over from a dead holder, but only the very claim we judged dead.
            claimable = Q(status=Status.RUNNING, claim_token=row.claim_token)
        elif row.status != Status.QUEUED:
            logger.info("submission %s is %s; duplicate delivery ignored", self.submission_id, row.status)
            return None
        if services.model_for(row) is None:
            # Deliberately not an attempt: it starts when a model is installed.
            Submission.objects.filter(Q(pk=row.pk) & claimable).update(
                status=Status.QUEUED, stage=Stage.WAITING_MODEL, claim_token="", progress=0, updated_at=now
            )
            logger.info("submission %s waits for a detector model", row.pk)
            return None
        claimed = Submission.objects.filter(Q(pk=row.pk) & claimable).update(
            status=Status.RUNNING,
            attempts=F("attempts") + 1,
            claim_token=self.token,
            heartbeat_at=now,
            started_at=now,
            finished_at=None,
            stage=Stage.DECODING,
            progress=STAGE_PROGRESS[Stage.DECODING],
            error_message="",
            updated_at=now,
        )
        if not claimed:
            logger.info("submission %s was claimed by another delivery", self.submission_id)
            return None
        submission = Submission.objects.select_related("requested_detector").get(pk=row.pk)
        if submission.attempts > max_attempts():
            logger.error("submission %s: attempt %s is over the cap", row.pk, submission.attempts)
            self.fail(too_many_attempts_message())
            return None
        self.heartbeat = Heartbeat(row.pk, self.token)
        self.heartbeat.start()
        return submission

    def advance(self, stage):
        """Record the stage the job has reached; ClaimLost when the claim is no longer ours."""
        if self.heartbeat is not None and self.heartbeat.lost:
            raise ClaimLost()
        now = timezone.now()
        if not self.mine().update(
            stage=stage, progress=STAGE_PROGRESS[stage], heartbeat_at=now, updated_at=now
        ):
            raise ClaimLost()

    def lock(self):
        """Lock the row for the transaction that saves the result; ClaimLost when it is not ours."""
        if self.mine().select_for_update().first() is None:
            raise ClaimLost()

    def finish(self, **fields):
        """Write the finished row and drop the claim, in the same transaction as `lock`."""
        now = timezone.now()
        Submission.objects.filter(pk=self.submission_id).update(
            **fields, finished_at=now, heartbeat_at=now, updated_at=now, claim_token=""
        )

    def release(self):
        """Give the claim back (queued) so a retry can take it. True when released."""
        try:
            self.stop_heartbeat()
            return bool(give_back(self.mine()))
        except DatabaseError:
            logger.warning("could not release submission %s", self.submission_id, exc_info=True)
            return False

    def fail(self, message):
        try:
            fail_submission(self.submission_id, message, claim_token=self.token)
        except DatabaseError:
            # The row stays running; requeue_stuck picks it up once the heartbeat is stale.
            logger.exception("could not record the failure of submission %s", self.submission_id)

    def stop_heartbeat(self):
        if self.heartbeat is not None:
            self.heartbeat.stop()
