"""Activating another model in the admin reaches a worker that is already running, with no restart."""

import pytest
from django.urls import reverse

from detector.models import Submission, User
from detector.registry import install_checkpoint
from detector.services import enqueue_analysis
from tests.conftest import wait_for
from tests.detector._worker_support import stored_submission
from tests.helpers.checkpoints import make_tiny_checkpoint
from tests.helpers.videos import make_face_video

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def analyse(owner, video_path):
    submission = stored_submission(owner, video_path)
    enqueue_analysis(submission)  # autocommit here, so the job is sent at once
    return wait_for(
        lambda: (
            Submission.objects.filter(pk=submission.pk, status__in=["done", "failed"])
            .select_related("current_result")
            .first()
        ),
        timeout=120,
        message=f"the worker to finish submission {submission.pk}",
    )


def activate_in_admin(client, detector):
    response = client.post(
        reverse("admin:detector_detectormodel_changelist"),
        {"action": "activate_selected", "_selected_action": [detector.pk]},
    )
    assert response.status_code == 302


def test_a_running_worker_uses_the_model_activated_in_the_admin_for_the_next_job(
    client, tmp_path, celery_broker, start_worker
):
    model_a = install_checkpoint(make_tiny_checkpoint(tmp_path / "a.pt", seed=1, verdict="REAL"), name="A")
    model_b = install_checkpoint(make_tiny_checkpoint(tmp_path / "b.pt", seed=2, verdict="FAKE"), name="B")
    admin = User.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin)
    video = make_face_video(tmp_path / "face.mp4", count=12)
    worker = start_worker()

    activate_in_admin(client, model_a)
    first = analyse(admin, video)
    assert first.status == "done", first.error_message + worker.log[-3000:]

    activate_in_admin(client, model_b)
    second = analyse(admin, video)
    assert second.status == "done", second.error_message + worker.log[-3000:]

    assert worker.proc.poll() is None  # the same worker process did both jobs
    assert (first.current_result.model_sha256, first.current_result.verdict) == (model_a.sha256, "REAL")
    assert (second.current_result.model_sha256, second.current_result.verdict) == (model_b.sha256, "FAKE")
