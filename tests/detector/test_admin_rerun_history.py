"""Re-running from the admin keeps the earlier result: the real job runs twice, in this process."""

import pytest
from django.urls import reverse

from detector.models import Result, User
from detector.registry import install_checkpoint
from detector.services import enqueue_analysis
from detector.tasks import analyze_submission
from detector.worker import runtime as worker_runtime
from tests.detector._worker_support import stored_submission
from tests.helpers.checkpoints import make_tiny_checkpoint
from tests.helpers.videos import make_face_video

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _worker_settings(settings, tmp_path):
    # The job's heartbeat thread has its own connection, which cannot see this test's transaction.
    settings.DETECTOR_HEARTBEAT_SECONDS = 3600
    settings.DETECTOR_CACHE_DIR = str(tmp_path / "model-cache")
    worker_runtime.forget()
    yield
    worker_runtime.forget()


def test_rerun_with_another_model_adds_a_result_and_keeps_the_first_in_history(client, tmp_path):
    model_a = install_checkpoint(
        make_tiny_checkpoint(tmp_path / "a.pt", seed=1, verdict="REAL"), activate=True
    )
    model_b = install_checkpoint(make_tiny_checkpoint(tmp_path / "b.pt", seed=2, verdict="FAKE"))
    admin = User.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin)
    owner = User.objects.create_user("alice", "alice@example.com", "pw")
    submission = stored_submission(owner, make_face_video(tmp_path / "face.mp4", count=12))
    enqueue_analysis(submission)
    assert analyze_submission.apply(args=[submission.pk]).get() == "done"
    submission.refresh_from_db()
    first = submission.current_result
    assert (first.model_sha256, first.verdict) == (model_a.sha256, "REAL")

    response = client.post(
        reverse("admin:detector_submission_changelist"),
        {
            "action": "rerun_selected",
            "_selected_action": [submission.pk],
            "apply": "1",
            "detector": model_b.pk,
        },
    )
    assert response.status_code == 302
    submission.refresh_from_db()
    assert submission.status == "queued"
    assert analyze_submission.apply(args=[submission.pk]).get() == "done"

    submission.refresh_from_db()
    second = submission.current_result
    assert second.pk != first.pk
    assert (second.model_sha256, second.verdict) == (model_b.sha256, "FAKE")
    assert set(Result.objects.filter(submission=submission)) == {first, second}
    assert first.frames.exists()  # the earlier run's face images are kept too

    html = client.get(reverse("admin:detector_submission_change", args=[submission.pk])).content.decode()
    assert model_a.sha256[:12] in html
    assert model_b.sha256[:12] in html

    # The thumbnails and the video link point at media views that let staff (not only the owner) in.
    frame = second.frames.exclude(overlay="").first()
    for kind in ("crop", "overlay"):
        url = reverse(
            "submission-frame-image",
            kwargs={"public_id": submission.public_id, "frame_id": frame.pk, "kind": kind},
        )
        assert f'src="{url}"' in html
        response = client.get(url)
        assert response.status_code == 200
        assert response["Content-Type"].startswith("image/")
    video_url = reverse("submission-video", kwargs={"public_id": submission.public_id})
    assert video_url in html
    assert client.get(video_url).status_code == 200


@pytest.mark.parametrize("status", ["fetching", "queued", "running"])
def test_an_unfinished_submission_is_skipped_by_the_admin_and_by_the_service(client, tmp_path, status):
    from detector.models import Submission
    from detector.services import rerun_analysis

    admin = User.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin)
    owner = User.objects.create_user("alice", "alice@example.com", "pw")
    submission = stored_submission(owner, make_face_video(tmp_path / "face.mp4", count=12))
    Submission.objects.filter(pk=submission.pk).update(status=status)
    submission.refresh_from_db()
    assert rerun_analysis(submission) is False
    response = client.post(
        reverse("admin:detector_submission_changelist"),
        {"action": "rerun_selected", "_selected_action": [submission.pk], "apply": "1", "detector": ""},
        follow=True,
    )
    skipped = "Skipped 1 submission(s) not finished yet (fetching, queued or running)."
    assert skipped in response.content.decode()
    submission.refresh_from_db()
    assert submission.status == status and submission.attempts == 0
