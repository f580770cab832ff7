"""The analysis worker for real: a celery worker subprocess, Redis, a tiny random-weight model.

Faults: a pool child SIGKILLed mid-job, the whole worker killed and replaced, the broker down
at upload time, the same job delivered twice at once. Each ends with exactly one result.
"""

import os
import signal
import socket

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command

from detector.models import Result, Submission
from detector.services import enqueue_analysis
from detector.tasks import analyze_submission
from tests.conftest import reset_connections, wait_for
from tests.detector._worker_support import face_video, install_tiny_model, make_user, stored_submission

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

Status, Stage = Submission.Status, Submission.Stage


@pytest.fixture
def worker_env(tmp_path):
    return {"DETECTOR_CACHE_DIR": str(tmp_path / "worker-model-cache")}


def finished(submission, timeout=120):
    return wait_for(
        lambda: Submission.objects.filter(pk=submission.pk, status__in=[Status.DONE, Status.FAILED]).first(),
        timeout=timeout,
        message=f"submission {submission.pk} to finish",
    )


def holder_pid(submission, worker):
    row = wait_for_or_log(
        worker,
        lambda: (
            Submission.objects.filter(pk=submission.pk, status=Status.RUNNING).exclude(claim_token="").first()
        ),
        timeout=90,
        message="a worker to claim the job",
    )
    return int(row.claim_token.split("|")[2])


def wait_for_or_log(worker, *args, **kwargs):
    try:
        return wait_for(*args, **kwargs)
    except AssertionError as exc:
        rows = list(Submission.objects.values("pk", "status", "stage", "dispatched_at", "claim_token"))
        raise AssertionError(f"{exc}\nrows: {rows}\nworker log:\n{worker.log[-4000:]}") from None


def test_an_upload_goes_through_the_stages_to_done_with_crops_on_storage(
    tmp_path, celery_broker, start_worker, worker_env
):
    worker = start_worker(extra_env=worker_env | {"DETECTOR_TEST_STAGE_DELAY": "0.4"})
    install_tiny_model(tmp_path)
    submission = stored_submission(make_user(), face_video(tmp_path), enqueue=True)
    stages = set()

    def observe():
        row = Submission.objects.get(pk=submission.pk)
        stages.add(row.stage)
        return row.status in (Status.DONE, Status.FAILED)

    wait_for(observe, timeout=120, interval=0.05, message="the worker to finish the job")
    submission.refresh_from_db()
    assert submission.status == Status.DONE, worker.log[-3000:]
    assert {Stage.FINDING_FACES, Stage.CLASSIFYING, Stage.SAVING} <= stages
    frames = submission.current_result.frames.all()
    assert frames and all(default_storage.exists(f.crop.name) for f in frames)


def test_a_job_whose_pool_process_is_killed_completes_once(tmp_path, celery_broker, start_worker, worker_env):
    worker = start_worker(extra_env=worker_env | {"DETECTOR_TEST_STAGE_DELAY": "2"})
    install_tiny_model(tmp_path)
    submission = stored_submission(make_user(), face_video(tmp_path), enqueue=True)

    os.kill(holder_pid(submission, worker), signal.SIGKILL)

    row = finished(submission)
    assert row.status == Status.DONE, worker.log[-3000:]
    assert row.attempts == 2  # the killed attempt, then the redelivery that took over
    assert Result.objects.filter(submission=submission).count() == 1


def test_a_job_survives_its_whole_worker_being_killed_and_replaced(
    tmp_path, celery_broker, start_worker, worker_env
):
    first = start_worker(extra_env=worker_env | {"DETECTOR_TEST_STAGE_DELAY": "3"})
    install_tiny_model(tmp_path)
    submission = stored_submission(make_user(), face_video(tmp_path), enqueue=True)
    holder_pid(submission, first)
    first.stop(signal.SIGKILL)  # the main process too: nothing is left to re-deliver the message

    second = start_worker(extra_env=worker_env)
    call_command("requeue_stuck")  # what the periodic task does every 30 s

    row = finished(submission)
    assert row.status == Status.DONE, second.log[-3000:]
    assert Result.objects.filter(submission=submission).count() == 1


def test_an_upload_while_the_broker_is_down_is_kept_and_finished_by_requeue_stuck(
    tmp_path, celery_broker, start_worker, worker_env
):
    install_tiny_model(tmp_path)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    working_url = celery_broker.conf.broker_url
    celery_broker.conf.broker_url = f"redis://127.0.0.1:{dead_port}/15"
    reset_connections(celery_broker)
    try:
        submission = stored_submission(make_user(), face_video(tmp_path), enqueue=True)  # does not raise
    finally:
        celery_broker.conf.broker_url = working_url
        reset_connections(celery_broker)
    submission.refresh_from_db()
    assert (submission.status, submission.stage, submission.dispatched_at) == (
        Status.QUEUED,
        Stage.WAITING,
        None,
    )

    worker = start_worker(extra_env=worker_env)
    call_command("requeue_stuck")

    row = finished(submission)
    assert row.status == Status.DONE, worker.log[-3000:]
    assert Result.objects.filter(submission=submission).count() == 1


def test_the_same_job_delivered_twice_at_once_gives_one_result(
    tmp_path, celery_broker, start_worker, worker_env
):
    worker = start_worker(concurrency=2, extra_env=worker_env | {"DETECTOR_TEST_STAGE_DELAY": "0.5"})
    install_tiny_model(tmp_path)
    submission = stored_submission(make_user(), face_video(tmp_path), enqueue=True)
    analyze_submission.apply_async(args=[submission.pk])  # a duplicate of the message just sent

    row = finished(submission)
    wait_for(
        lambda: worker.log.count("succeeded in") >= 2, timeout=60, message="both deliveries to be handled"
    )
    assert row.status == Status.DONE, worker.log[-3000:]
    assert row.attempts == 1
    assert Result.objects.filter(submission=submission).count() == 1
    assert "'skipped'" in worker.log


def test_enqueue_without_a_broker_never_raises(tmp_path, celery_broker):
    celery_broker.conf.broker_url = "redis://127.0.0.1:1/15"
    reset_connections(celery_broker)
    install_tiny_model(tmp_path)
    submission = stored_submission(make_user(), face_video(tmp_path))
    enqueue_analysis(submission)
    assert Submission.objects.get(pk=submission.pk).status == Status.QUEUED
