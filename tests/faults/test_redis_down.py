"""Redis (the broker) goes down: during an upload, during a job and during status polling.

A private redis-server on a free port is started, killed and restarted; the shared one is never
touched. The pages keep working, the user sees a clear state, and the job finishes once Redis
is back (through the periodic requeue_stuck, run here as beat would).
"""

import pytest
from django.urls import reverse

from detector.models import Result, Submission, User
from tests.conftest import wait_for
from tests.detector._worker_support import face_video, install_tiny_model, stored_submission
from tests.faults.conftest import finished_with_beat, running_holder_pid

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

Status = Submission.Status


def status_json(client, submission):
    response = client.get(reverse("submission-status", kwargs={"public_id": submission.public_id}))
    assert response.status_code == 200
    return response.json()


def test_redis_down_during_upload_polling_and_a_job_never_loses_work(
    tmp_path, client, private_redis, private_broker, start_worker, worker_env
):
    # One test for the three outages, so one worker and one Celery app state serve them all.
    worker = start_worker(
        broker_url=private_redis.url, extra_env=worker_env | {"DETECTOR_TEST_STAGE_DELAY": "1"}
    )
    install_tiny_model(tmp_path)
    user = User.objects.create_user("uploader", password="pw-uploader-123")
    client.force_login(user)

    def wait_done(submission):
        try:
            return finished_with_beat(submission, timeout=150)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{worker.log[-3000:]}") from None

    # 1. Redis is down while a user uploads and then polls.
    private_redis.kill()
    with open(face_video(tmp_path), "rb") as video:
        response = client.post(reverse("submission-create"), {"video": video, "frames": "10"})
    assert response.status_code == 302  # the upload page works without the broker
    first = Submission.objects.get(owner=user)
    assert first.dispatched_at is None  # never reached the broker; kept for requeue_stuck
    state = status_json(client, first)
    assert state["status"] == "queued" and state["message"]
    assert client.get(reverse("submission-detail", kwargs={"public_id": first.public_id})).status_code == 200
    assert client.get(reverse("submission-list")).status_code == 200

    private_redis.start()  # same port: the worker reconnects on its own
    row = wait_done(first)
    assert row.status == Status.DONE, worker.log[-4000:]
    assert status_json(client, first)["status"] == "done"

    # 2. Redis dies while a job runs: the job needs only the database and storage.
    second = stored_submission(user, face_video(tmp_path, name="second.mp4"), enqueue=True)
    try:
        running_holder_pid(second, timeout=90)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{worker.log[-3000:]}") from None
    private_redis.kill()
    assert status_json(client, second)["status"] in ("running", "done")  # polling needs no broker
    row = wait_for(
        lambda: Submission.objects.filter(pk=second.pk, status__in=[Status.DONE, Status.FAILED]).first(),
        timeout=120,
        message="the running job to finish without the broker",
    )
    assert row.status == Status.DONE, worker.log[-4000:]

    # 3. Redis comes back empty (no persistence, like a replaced instance): new work flows again.
    private_redis.start()
    third = stored_submission(user, face_video(tmp_path, name="third.mp4"), enqueue=True)
    assert wait_done(third).status == Status.DONE
    for submission in (first, second, third):
        assert Result.objects.filter(submission=submission).count() == 1
    assert worker.proc.poll() is None
