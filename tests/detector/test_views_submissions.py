"""Submission pages: list, detail, live status, delete — for the owner, another user, staff and anonymous."""

import uuid

import pytest
from django.core.files.storage import default_storage
from django.test import Client
from django.urls import reverse

from detector.models import FrameImage, Submission
from tests.helpers.web import make_result, make_submission, make_user

pytestmark = pytest.mark.django_db


def client_for(user):
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def detail_url(submission, name="submission-detail"):
    return reverse(name, kwargs={"public_id": submission.public_id})


# --- list ---------------------------------------------------------------------------------


def test_the_list_shows_only_the_users_own_submissions(owner, other):
    make_submission(owner, name="mine.mp4")
    make_submission(other, name="theirs.mp4")
    response = client_for(owner).get(reverse("submission-list"))
    assert response.status_code == 200
    assert b"mine.mp4" in response.content
    assert b"theirs.mp4" not in response.content


def test_staff_see_only_their_own_list_too(staff, other):
    # Staff browse everybody's submissions in the admin, not in their personal list.
    make_submission(other, name="theirs.mp4")
    assert b"theirs.mp4" not in client_for(staff).get(reverse("submission-list")).content


def test_the_list_shows_status_badges_and_verdicts(owner):
    make_result(make_submission(owner, name="done.mp4"), verdict="FAKE", fake_probability=0.91)
    make_submission(owner, name="waiting.mp4")
    html = client_for(owner).get(reverse("submission-list")).content.decode()
    assert "text-bg-danger" in html and "FAKE" in html and "91% fake" in html
    assert "Queued" in html


def test_the_list_shows_verdicts_so_no_cache_may_keep_it(owner):
    make_result(make_submission(owner), verdict="FAKE")
    cache_control = client_for(owner).get(reverse("submission-list"))["Cache-Control"]
    assert "private" in cache_control and "no-store" in cache_control


def test_the_list_paginates(owner):
    for i in range(23):
        make_submission(owner, name=f"clip-{i:02d}.mp4")
    client = client_for(owner)
    first = client.get(reverse("submission-list")).content.decode()
    second = client.get(reverse("submission-list") + "?page=2").content.decode()
    assert "Page 1 of 2" in first and "clip-22.mp4" in first and "clip-00.mp4" not in first
    assert "clip-00.mp4" in second and "clip-22.mp4" not in second


def test_the_list_needs_a_login():
    response = Client().get(reverse("submission-list"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_the_list_refuses_post(owner):
    assert client_for(owner).post(reverse("submission-list")).status_code == 405


# --- detail -------------------------------------------------------------------------------


def test_the_owner_sees_a_queued_submission_with_live_status(owner):
    submission = make_submission(owner, dispatched_at=None)
    html = client_for(owner).get(detail_url(submission)).content.decode()
    assert detail_url(submission, "submission-status") in html  # the polling endpoint
    assert 'id="status-bar"' in html
    assert "will start shortly" in html


def test_a_waiting_for_model_submission_says_so(owner):
    submission = make_submission(owner, stage=Submission.Stage.WAITING_MODEL)
    html = client_for(owner).get(detail_url(submission)).content.decode()
    assert "Waiting for a detector model" in html
    waiting_box = html.split('id="waiting-model"')[1].split(">")[0]
    assert "d-none" not in waiting_box


def test_the_queue_position_is_shown_while_waiting(owner, other):
    from django.utils import timezone

    now = timezone.now()
    make_submission(other, enqueued_at=now - timezone.timedelta(seconds=30), dispatched_at=now)
    make_submission(other, enqueued_at=now - timezone.timedelta(seconds=20), dispatched_at=now)
    mine = make_submission(owner, enqueued_at=now, dispatched_at=now)
    payload = client_for(owner).get(detail_url(mine, "submission-status")).json()
    assert payload["queue_position"] == 3
    assert "2 videos ahead of yours" in payload["message"]


def test_a_running_submission_shows_stage_and_progress(owner):
    submission = make_submission(owner, status="running", stage="finding_faces", progress=40)
    html = client_for(owner).get(detail_url(submission)).content.decode()
    assert "Finding faces" in html
    assert "width: 40%" in html


def test_a_failed_submission_shows_the_message_and_what_to_do(owner):
    submission = make_submission(
        owner, status="failed", stage="finished", error_message="No face was found in the sampled frames."
    )
    html = client_for(owner).get(detail_url(submission)).content.decode()
    assert "No face was found in the sampled frames." in html
    assert "What you can do" in html
    assert 'id="live-status"' not in html


def test_a_finished_submission_shows_verdict_model_crops_chart_and_player(owner):
    submission = make_submission(owner)
    result = make_result(submission, verdict="FAKE", fake_probability=0.913, frames=3)
    html = client_for(owner).get(detail_url(submission)).content.decode()
    assert 'data-testid="verdict">FAKE<' in html
    assert "91.3%" in html
    assert result.model_name in html and result.model_sha256[:12] in html
    # No training jargon on the verdict card: a link to the model's card instead.
    assert "Validation AUC" not in html and f'href="{reverse("model-card")}"' in html
    assert "4.2 s" in html  # processing time
    assert html.count('data-testid="crop"') == 3
    assert 'id="overlay-toggle"' in html
    frame = FrameImage.objects.filter(result=result).order_by("position").first()
    crop_url = reverse(
        "submission-frame-image",
        kwargs={"public_id": submission.public_id, "frame_id": frame.pk, "kind": "crop"},
    )
    assert f'src="{crop_url}"' in html
    assert f'data-overlay-src="{crop_url.replace("/crop/", "/overlay/")}"' in html
    assert "<svg" in html and "polyline" in html
    assert reverse("submission-video", kwargs={"public_id": submission.public_id}) in html
    assert "Each person found" not in html  # only one person


def test_the_result_page_shows_a_verdict_so_no_cache_may_keep_it(owner):
    submission = make_submission(owner)
    make_result(submission, verdict="FAKE")
    cache_control = client_for(owner).get(detail_url(submission))["Cache-Control"]
    assert "private" in cache_control and "no-store" in cache_control


def test_crops_appear_in_frame_order_with_timestamps(owner):
    submission = make_submission(owner)
    make_result(submission, frames=3)
    html = client_for(owner).get(detail_url(submission)).content.decode()
    assert html.index("0.00 s") < html.index("0.50 s") < html.index("1.00 s")


def test_several_people_get_a_per_person_breakdown(owner):
    submission = make_submission(owner)
    make_result(submission, identities=(0, 1), frames=2)
    html = client_for(owner).get(detail_url(submission)).content.decode()
    assert "Each person found" in html
    assert html.count('data-testid="person"') == 2
    assert "Person 1 (main)" in html and "Person 2" in html


def test_without_overlays_there_is_no_toggle(owner):
    submission = make_submission(owner)
    make_result(submission, overlays=False)
    assert 'id="overlay-toggle"' not in client_for(owner).get(detail_url(submission)).content.decode()


def test_another_user_gets_404_on_the_detail_and_status(owner, other):
    submission = make_submission(owner)
    client = client_for(other)
    assert client.get(detail_url(submission)).status_code == 404
    assert client.get(detail_url(submission, "submission-status")).status_code == 404


def test_reviewing_staff_may_open_anyones_submission_but_not_delete_it(owner):
    submission = make_submission(owner)
    make_result(submission)
    reviewer = client_for(make_user("reviewer", reviewer=True))
    assert reviewer.get(detail_url(submission)).status_code == 200
    assert reviewer.get(detail_url(submission, "submission-status")).status_code == 200
    # Changes to other people's submissions go through the admin and its permissions.
    assert reviewer.post(detail_url(submission, "submission-delete")).status_code == 404
    assert Submission.objects.filter(pk=submission.pk).exists()


def test_staff_without_the_review_permission_get_404(owner, staff):
    submission = make_submission(owner)
    assert client_for(staff).get(detail_url(submission)).status_code == 404
    assert client_for(staff).get(detail_url(submission, "submission-status")).status_code == 404


def test_anonymous_visitors_are_sent_to_log_in(owner):
    submission = make_submission(owner)
    for name in ("submission-detail", "submission-status", "submission-delete"):
        response = Client().get(detail_url(submission, name))
        assert response.status_code == 302, name
        assert response["Location"].startswith(reverse("login"))


def test_an_unknown_id_is_404(owner):
    url = reverse("submission-detail", kwargs={"public_id": uuid.uuid4()})
    assert client_for(owner).get(url).status_code == 404


def test_the_detail_and_status_refuse_post(owner):
    submission = make_submission(owner)
    client = client_for(owner)
    assert client.post(detail_url(submission)).status_code == 405
    assert client.post(detail_url(submission, "submission-status")).status_code == 405


# --- status JSON --------------------------------------------------------------------------


def test_the_status_endpoint_reports_stage_and_progress(owner):
    submission = make_submission(owner, status="running", stage="classifying", progress=70)
    response = client_for(owner).get(detail_url(submission, "submission-status"))
    assert response["Content-Type"] == "application/json"
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]
    payload = response.json()
    assert payload["status"] == "running"
    assert payload["stage"] == "classifying"
    assert payload["progress"] == 70
    assert payload["finished"] is False
    assert payload["queue_position"] is None


def test_the_status_endpoint_flags_waiting_for_a_model(owner):
    submission = make_submission(owner, stage="waiting_model")
    payload = client_for(owner).get(detail_url(submission, "submission-status")).json()
    assert payload["waiting_for_model"] is True
    assert "detector model" in payload["message"]


def test_the_status_endpoint_reports_a_finished_run(owner):
    submission = make_submission(owner)
    make_result(submission)
    payload = client_for(owner).get(detail_url(submission, "submission-status")).json()
    assert payload["finished"] is True and payload["progress"] == 100


# --- delete -------------------------------------------------------------------------------


def test_the_owner_deletes_a_submission_and_its_files(owner, django_capture_on_commit_callbacks):
    submission = make_submission(owner)
    result = make_result(submission)
    names = [submission.video.name] + [
        name for f in FrameImage.objects.filter(result=result) for name in (f.crop.name, f.overlay.name)
    ]
    assert all(default_storage.exists(name) for name in names)
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(owner).post(detail_url(submission, "submission-delete"))
    assert response.status_code == 302 and response["Location"] == reverse("submission-list")
    assert not Submission.objects.filter(pk=submission.pk).exists()
    assert not any(default_storage.exists(name) for name in names)


def test_the_delete_page_asks_for_confirmation_on_get(owner):
    submission = make_submission(owner, name="keep-me.mp4")
    response = client_for(owner).get(detail_url(submission, "submission-delete"))
    assert response.status_code == 200
    assert b"keep-me.mp4" in response.content
    assert Submission.objects.filter(pk=submission.pk).exists()


def test_another_user_cannot_delete(owner, other):
    submission = make_submission(owner)
    assert client_for(other).post(detail_url(submission, "submission-delete")).status_code == 404
    assert Submission.objects.filter(pk=submission.pk).exists()


def test_anonymous_cannot_delete(owner):
    submission = make_submission(owner)
    response = Client().post(detail_url(submission, "submission-delete"))
    assert response.status_code == 302
    assert Submission.objects.filter(pk=submission.pk).exists()


def test_delete_refuses_put(owner):
    submission = make_submission(owner)
    assert client_for(owner).put(detail_url(submission, "submission-delete")).status_code == 405


def test_delete_needs_a_csrf_token(owner):
    submission = make_submission(owner)
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.post(detail_url(submission, "submission-delete")).status_code == 403
    assert Submission.objects.filter(pk=submission.pk).exists()
    # The delete form on the page carries the token, so a real post from the page works.
    page = client.get(detail_url(submission)).content.decode()
    token = page.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
    response = client.post(detail_url(submission, "submission-delete"), {"csrfmiddlewaretoken": token})
    assert response.status_code == 302


def test_the_result_names_the_architecture_of_the_model_that_judged_it(owner):

    submission = make_submission(owner)
    result = make_result(submission)
    result.detector.config = {"backbone": "efficientnet_lite0", "temporal": "sequence"}
    result.detector.save()
    html = client_for(owner).get(detail_url(submission)).content.decode()
    assert "EfficientNet-Lite0 (ImageNet-pretrained) features per face, then an LSTM over the frames" in html
    assert "ResNeXt50" not in html
    result.detector.config = {"backbone": "residual", "temporal": "reference"}
    result.detector.save()
    html = client_for(owner).get(detail_url(submission)).content.decode()
    assert "each frame scored on its own" in html and "LSTM" not in html


# --- the score in context -----------------------------------------------------------------


def with_test_scores(result, reals, fakes, threshold=0.6, auc=0.75):
    detector = result.detector
    detector.metrics = {
        **detector.metrics,
        "test_scores": {
            "reals": reals,
            "fakes": fakes,
            "count": len(reals) + len(fakes),
            "auc": auc,
            "threshold": threshold,
        },
    }
    detector.save()


def test_the_result_says_how_often_test_videos_scored_this_high(owner):
    submission = make_submission(owner)
    result = make_result(submission, verdict="REAL", fake_probability=0.5)
    reals = [round(i / 40, 4) for i in range(40)]  # 0.0 … 0.975: 20 at 0.5 or above, 16 at 0.6 or above
    with_test_scores(result, reals, [0.3, 0.5, 0.5, 0.9], auc=0.9)
    html = client_for(owner).get(detail_url(submission)).content.decode()
    assert (
        "Of 40 real test videos, 20 scored at least this high; of 4 fake test videos, 3 did. "
        "16 of 40 real test videos (40%) reached the model&#x27;s threshold."
    ) in html
    assert 'data-testid="score-caution"' not in html  # 40 reals and AUC 0.9: nothing to warn about


def test_the_result_warns_when_the_models_test_figures_are_weak(owner):
    submission = make_submission(owner)
    result = make_result(submission, fake_probability=0.91)
    with_test_scores(result, [0.1, 0.6, 0.95], [0.2, 0.91, 0.99], auc=0.75)
    html = client_for(owner).get(detail_url(submission)).content.decode()
    assert "Of 3 real test videos, 1 scored at least this high; of 3 fake test videos, 2 did." in html
    assert "2 of 3 real test videos (67%) reached the model&#x27;s threshold" in html
    assert (
        "Read this as a rough guide: it was tested on few real videos (3) and it ranked a fake test "
        "video above a real one only 75% of the time."
    ) in html


def test_a_model_without_test_figures_says_so(owner):
    submission = make_submission(owner)
    make_result(submission)
    html = client_for(owner).get(detail_url(submission)).content.decode()
    assert "This model comes with no test figures" in html
    assert "real test videos" not in html
