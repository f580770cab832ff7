"""A job over its time limit: FAILED with a "took too long" message and its temp files removed."""

import pytest

from detector.models import Result, Submission
from tests.detector._worker_support import face_video, install_tiny_model, make_user, stored_submission
from tests.faults.conftest import files_under, finished

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

Status = Submission.Status


def test_a_job_over_the_soft_time_limit_fails_with_a_clear_message_and_cleans_up(
    tmp_path, settings, celery_broker, start_worker, worker_env
):
    worker = start_worker(
        extra_env=worker_env
        | {
            "CELERY_TASK_SOFT_TIME_LIMIT": "5",
            "CELERY_TASK_HARD_TIME_LIMIT": "10",
            "DETECTOR_TEST_STAGE_DELAY": "30",  # each stage sleeps far past the limit
        }
    )
    install_tiny_model(tmp_path)
    submission = stored_submission(make_user(), face_video(tmp_path), enqueue=True)

    row = finished(submission, timeout=90, worker=worker)

    assert row.status == Status.FAILED, worker.log[-3000:]
    message = row.error_message.lower()
    assert "too long" in message
    assert not Result.objects.filter(submission=submission).exists()
    assert files_under(settings.MEDIA_ROOT, f"submissions/{submission.public_id}/results") == []
    # The worker's scratch copy of the video is gone (TMPDIR is private to this worker).
    # (pymp-* is the worker pool's own folder, not the job's.)
    assert list((tmp_path / "worker-tmp").glob("analysis-*")) == []
    assert worker.proc.poll() is None  # the soft limit is handled; the worker lives on


@pytest.mark.django_db(transaction=False)
def test_the_time_limits_come_from_the_worker_not_from_the_publishing_process():
    from deepfake_site.celery import app
    from detector.tasks import analyze_submission

    options = analyze_submission._get_exec_options()
    # None here means the message carries no limit and the worker applies its own configuration.
    assert options.get("time_limit") is None and options.get("soft_time_limit") is None
    assert app.conf.task_time_limit is None  # this (publishing) process sets none
