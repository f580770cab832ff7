"""The disk fills up while the worker saves face crops: FAILED with a message, no partial files."""

import pytest

from detector.models import FrameImage, Result, Submission
from detector.tasks import analyze_submission
from tests.detector._worker_support import face_video, install_tiny_model, make_user, stored_submission
from tests.faults.conftest import files_under
from tests.helpers.storages import DiskFullStorage

pytestmark = pytest.mark.django_db

Status = Submission.Status


@pytest.fixture
def disk_full_after(settings, monkeypatch, tmp_path):
    """Switch media storage to DiskFullStorage (what MEDIA_STORAGE_BACKEND selects in a worker)."""
    settings.DETECTOR_CACHE_DIR = str(tmp_path / "model-cache")
    settings.DETECTOR_EXPLAIN = False

    def arm(count):
        monkeypatch.setenv("DISK_FULL_AFTER", str(count))
        DiskFullStorage.reset()
        settings.STORAGES = settings.STORAGES | {
            "default": {"BACKEND": "tests.helpers.storages.DiskFullStorage", "OPTIONS": {}}
        }

    return arm


@pytest.mark.parametrize("crops_before_full", [0, 3])
def test_a_full_disk_while_saving_crops_fails_the_job_and_leaves_no_partial_files(
    tmp_path, settings, disk_full_after, crops_before_full
):
    install_tiny_model(tmp_path)
    submission = stored_submission(make_user(), face_video(tmp_path), enqueue=False)
    disk_full_after(crops_before_full)
    Submission.objects.filter(pk=submission.pk).update(status=Status.QUEUED)

    analyze_submission.apply(args=[submission.pk])

    submission.refresh_from_db()
    assert submission.status == Status.FAILED
    assert submission.error_message.strip()
    assert str(submission.public_id) in submission.error_message  # a reference to quote to support
    assert not Result.objects.filter(submission=submission).exists()
    assert not FrameImage.objects.filter(result__submission=submission).exists()
    assert files_under(settings.MEDIA_ROOT, f"submissions/{submission.public_id}/results") == []
    # The upload itself is untouched, so the user (or an admin) can re-run it later.
    assert submission.video.storage.exists(submission.video.name)


def test_with_room_on_the_disk_the_same_job_succeeds(tmp_path, disk_full_after):
    # The control for the test above: the fault, not something else, is what fails the job.
    install_tiny_model(tmp_path)
    submission = stored_submission(make_user(), face_video(tmp_path), enqueue=False)
    disk_full_after(10_000)
    Submission.objects.filter(pk=submission.pk).update(status=Status.QUEUED)

    analyze_submission.apply(args=[submission.pk])

    submission.refresh_from_db()
    assert submission.status == Status.DONE, submission.error_message
    assert FrameImage.objects.filter(result__submission=submission).exists()
