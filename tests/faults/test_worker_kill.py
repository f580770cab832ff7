"""Workers die: SIGKILL mid-job twice in a row, and a job that kills its worker every time.

(A single kill of a pool child or of the whole worker is covered in tests/detector/test_worker_faults.py.)
"""

import os
import signal
import subprocess
import sys
import time

import pytest
from django.core.management import call_command

from detector.models import FrameImage, Result, Submission
from detector.worker.claims import max_attempts
from tests.conftest import wait_for
from tests.detector._worker_support import face_video, install_tiny_model, make_user, stored_submission
from tests.faults.conftest import files_under, finished, finished_with_beat, running_holder_pid

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

Status = Submission.Status


def test_a_job_killed_twice_in_a_row_completes_exactly_once(
    tmp_path, settings, celery_broker, start_worker, worker_env
):
    first = start_worker(extra_env=worker_env | {"DETECTOR_TEST_STAGE_DELAY": "2"})
    install_tiny_model(tmp_path)
    submission = stored_submission(make_user(), face_video(tmp_path), enqueue=True)

    # Kill 1: the pool child (like an OOM kill). The worker re-delivers the unacknowledged job.
    killed = running_holder_pid(submission)
    os.kill(killed, signal.SIGKILL)
    # Kill 2: the new holder, and this time the whole worker with it (a host crash):
    # nothing is left to re-deliver the message; the periodic recovery must notice.
    running_holder_pid(submission, exclude={killed})
    first.stop(signal.SIGKILL)

    second = start_worker(extra_env=worker_env)
    # The killed holder may linger as a zombie (its parent died too, and PID 1 in a container
    # may not reap it), which the claim's process check cannot tell from a live process; see
    # test_a_zombie_holder_counts_as_gone. Then only the heartbeat lease tells: shorten it here.
    settings.DETECTOR_LEASE_SECONDS = 3
    time.sleep(3.5)
    call_command("requeue_stuck")  # what beat runs every 30 s

    row = finished(submission)
    assert row.status == Status.DONE, second.log[-3000:] + first.log[-3000:]
    assert row.attempts == 3
    results = Result.objects.filter(submission=submission)
    assert results.count() == 1
    assert row.current_result_id == results.get().pk
    # Only the surviving attempt's images exist, in storage and in the database.
    stored = files_under(settings.MEDIA_ROOT, f"submissions/{submission.public_id}/results")
    rows = FrameImage.objects.filter(result__submission=submission)
    names = {f.crop.name for f in rows} | {f.overlay.name for f in rows if f.overlay}
    assert {str(p.relative_to(settings.MEDIA_ROOT)) for p in stored} == names


def test_a_video_that_kills_its_worker_every_time_ends_failed_after_bounded_attempts(
    tmp_path, celery_broker, start_worker, worker_env
):
    worker = start_worker(
        extra_env=worker_env | {"MEDIA_STORAGE_BACKEND": "tests.helpers.storages.PoisonStorage"}
    )
    install_tiny_model(tmp_path)
    submission = stored_submission(make_user(), face_video(tmp_path), enqueue=True)

    try:
        # A child killed the instant it takes the job may die before billiard hears it accepted
        # it; then no WorkerLostError re-delivers the message and only the periodic recovery
        # (beat's requeue_stuck) brings the job back, so run it here as beat would.
        row = finished_with_beat(submission, timeout=150)
    except AssertionError as exc:
        row = Submission.objects.get(pk=submission.pk)
        raise AssertionError(
            f"{exc}; row {row.status} attempts={row.attempts}\n{worker.log[-5000:]}"
        ) from None

    assert row.status == Status.FAILED, worker.log[-4000:]
    assert row.attempts <= max_attempts() + 1
    assert "stopped unexpectedly" in row.error_message
    assert not Result.objects.filter(submission=submission).exists()
    # The worker itself survived its children's deaths and still takes jobs.
    assert worker.proc.poll() is None
    second = stored_submission(make_user("bob"), face_video(tmp_path, name="b.mp4"), enqueue=True)
    wait_for(
        lambda: Submission.objects.get(pk=second.pk).attempts >= 1, timeout=60, message="next job claimed"
    )


@pytest.mark.django_db(transaction=False)
def test_a_zombie_holder_counts_as_gone():
    """A SIGKILLed pool child whose parent died too is a zombie until PID 1 reaps it (in a
    container without an init, never). /proc still lists it with its start time."""
    from detector.worker import claims

    # The holder writes its token while alive; it becomes a zombie only later.
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    token = claims.new_token().split("|")
    token[2], token[3] = str(child.pid), claims._start_time(child.pid)
    assert token[3], "a live process has a start time"
    assert not claims.process_is_gone("|".join(token))
    child.stdin.close()
    wait_for(lambda: _state(child.pid) == "Z", timeout=10, message="the child to become a zombie")
    try:
        assert claims.process_is_gone("|".join(token))
    finally:
        child.wait()


def _state(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]
