"""Redis restarts empty while jobs wait in its queue: their messages are gone, their rows still say
queued. The periodic recovery re-sends such a job once its queued lease (QUEUED_RESEND_SECONDS)
has passed and the broker's job queue holds nothing, and it runs exactly once.

A private redis-server on a free port is killed and restarted; the shared one is never touched.
"""

from datetime import timedelta

import pytest
import redis
from django.utils import timezone

from detector.models import Result, Submission
from detector.worker.recovery import requeue_stuck
from tests.detector._worker_support import face_video, install_tiny_model, make_user, stored_submission
from tests.faults.conftest import finished

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

Status = Submission.Status


def waiting_messages(private_redis, queue):
    return redis.Redis.from_url(private_redis.url).llen(queue)


def recover():
    """One run of the periodic recovery; how many jobs it re-sent, for whatever reason."""
    return sum(requeue_stuck().values())


def age(submission, seconds):
    then = timezone.now() - timedelta(seconds=seconds)
    Submission.objects.filter(pk=submission.pk).update(dispatched_at=then, updated_at=then)


def test_a_queued_job_whose_message_redis_lost_is_resent_after_its_lease_and_runs_once(
    tmp_path, settings, private_redis, private_broker, queue_names, start_worker, worker_env
):
    settings.QUEUED_RESEND_SECONDS = 120
    install_tiny_model(tmp_path)
    submission = stored_submission(make_user(), face_video(tmp_path), enqueue=True)  # no worker yet
    assert Submission.objects.get(pk=submission.pk).dispatched_at is not None
    assert waiting_messages(private_redis, queue_names["gpu"]) == 1

    # Its message is still waiting in the broker: however long it has waited, no duplicate.
    age(submission, 600)
    assert recover() == 0
    assert waiting_messages(private_redis, queue_names["gpu"]) == 1

    private_redis.kill()
    private_redis.start()  # same port, nothing kept: the message is gone
    assert waiting_messages(private_redis, queue_names["gpu"]) == 0

    # Within its lease a queued job is left alone (its message may be on its way to a worker).
    age(submission, 60)
    assert recover() == 0
    assert waiting_messages(private_redis, queue_names["gpu"]) == 0

    # Past the lease (2 minutes, not STUCK_AFTER_SECONDS' 35), with the queue empty: re-sent once.
    age(submission, 150)
    assert recover() == 1
    assert waiting_messages(private_redis, queue_names["gpu"]) == 1
    assert recover() == 0  # the new message waits: not sent again

    worker = start_worker(broker_url=private_redis.url, extra_env=worker_env)
    row = finished(submission, worker=worker)
    assert row.status == Status.DONE, worker.log[-3000:]
    assert row.attempts == 1
    assert Result.objects.filter(submission=submission).count() == 1
    assert recover() == 0
