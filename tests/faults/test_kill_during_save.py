"""A worker SIGKILLed while it saves a result's face images: the re-run completes once, and no
image of the face survives the submission's deletion (DELETE, then purge_media) or, without a
deletion, the orphan sweep.

The first attempt runs the real job in a subprocess whose storage kills it (SIGKILL) after it
has written a few crops and overlays, before any row references them.
"""

import os
import signal
import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client

from detector.models import FrameImage, Result, Submission
from detector.tasks import analyze_submission
from detector.tokens import create_token
from tests.conftest import ROOT, database_url_for_subprocess
from tests.detector._worker_support import face_video, install_tiny_model, make_user, stored_submission
from tests.faults.conftest import files_under

pytestmark = pytest.mark.django_db(transaction=True)

Status = Submission.Status
IMAGES_BEFORE_THE_KILL = 3
FIRST_ATTEMPT = """
import django
django.setup()
from detector.tasks import analyze_submission
analyze_submission.apply(args=[{pk}])
"""


def run_first_attempt_and_kill_it_while_saving(submission, settings, tmp_path):
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "deepfake_site.settings",
        "DATABASE_URL": database_url_for_subprocess(),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "MEDIA_STORAGE_BACKEND": "tests.helpers.storages.KillWhileSavingStorage",
        "KILL_AFTER": str(IMAGES_BEFORE_THE_KILL),
        "DETECTOR_CACHE_DIR": str(tmp_path / "subprocess-model-cache"),
        "CACHE_URL": "",
        "VAR_DIR": str(tmp_path / "var"),
    }
    done = subprocess.run(
        [sys.executable, "-c", FIRST_ATTEMPT.format(pk=submission.pk)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]


def referenced_names(submission):
    rows = FrameImage.objects.filter(result__submission=submission)
    return {submission.video.name} | {f.crop.name for f in rows} | {f.overlay.name for f in rows if f.overlay}


def stored_names(settings, submission):
    files = files_under(settings.MEDIA_ROOT, f"submissions/{submission.public_id}")
    return {str(p.relative_to(settings.MEDIA_ROOT)) for p in files}


@pytest.fixture
def killed_then_rerun(tmp_path, settings):
    """A submission whose first attempt was killed while saving images and whose re-run finished:
    returns it with the names of the killed attempt's images (which no row references)."""
    settings.DETECTOR_CACHE_DIR = str(tmp_path / "model-cache")
    settings.DETECTOR_EXPLAIN = True  # crops and overlays
    install_tiny_model(tmp_path)
    submission = stored_submission(make_user(), face_video(tmp_path), enqueue=False)
    Submission.objects.filter(pk=submission.pk).update(status=Status.QUEUED)

    run_first_attempt_and_kill_it_while_saving(submission, settings, tmp_path)
    row = Submission.objects.get(pk=submission.pk)
    assert row.status == Status.RUNNING and row.stage == Submission.Stage.SAVING
    leftovers = stored_names(settings, submission) - {submission.video.name}
    assert len(leftovers) == IMAGES_BEFORE_THE_KILL

    # The re-run (what redelivery or requeue_stuck starts) takes over from the dead holder.
    analyze_submission.apply(args=[submission.pk])
    submission.refresh_from_db()
    assert submission.status == Status.DONE, submission.error_message
    assert submission.attempts == 2
    assert Result.objects.filter(submission=submission).count() == 1
    # What the issue saw: the killed attempt's images, in a second results folder, unreferenced.
    assert leftovers <= stored_names(settings, submission)
    assert not leftovers & referenced_names(submission)
    return submission, leftovers


def test_after_delete_and_purge_no_file_of_a_submission_killed_while_saving_remains(
    settings, killed_then_rerun
):
    submission, _ = killed_then_rerun
    client = Client(HTTP_AUTHORIZATION=f"Token {create_token(submission.owner, 'tests')[1]}")

    response = client.delete(f"/api/v1/submissions/{submission.public_id}/")
    assert response.status_code == 204
    call_command("purge_media", "--older-than", "0", stdout=StringIO())

    assert stored_names(settings, submission) == set()
    assert not (settings.MEDIA_ROOT / "submissions" / str(submission.public_id)).exists()


def test_the_sweep_removes_the_killed_attempts_images_after_the_grace_period(settings, killed_then_rerun):
    submission, leftovers = killed_then_rerun
    kept = referenced_names(submission)

    out = StringIO()
    call_command("sweep_media", stdout=out)  # the default grace: a running job's images are safe
    assert "deleted 0 unreferenced files" in out.getvalue()
    assert stored_names(settings, submission) == kept | leftovers

    out = StringIO()
    call_command("sweep_media", "--grace-seconds", "0", stdout=out)
    report = out.getvalue()
    assert f"deleted {len(leftovers)} unreferenced files" in report
    assert all(name in report for name in leftovers)
    assert stored_names(settings, submission) == kept  # the result's images and the video stay
