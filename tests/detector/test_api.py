"""JSON API v1: token auth (never the session), ownership, validation shared with the pages."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from detector.models import ApiToken, Submission
from detector.tokens import create_token, revoke_token
from tests.helpers.videos import make_face_video
from tests.helpers.web import make_result, make_submission, make_user

pytestmark = pytest.mark.django_db

LIST_URL = "/api/v1/submissions/"


def api_client(user):
    secret = create_token(user, "tests")[1]
    return Client(HTTP_AUTHORIZATION=f"Token {secret}")


def detail_url(submission):
    return reverse("api-submission-detail", kwargs={"public_id": submission.public_id})


@pytest.fixture(scope="module")
def face_clip(tmp_path_factory):
    return make_face_video(tmp_path_factory.mktemp("clips") / "face.mp4", count=20).read_bytes()


def test_the_routes_are_where_the_docs_say():
    assert reverse("api-submission-list") == LIST_URL


# --- authentication ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header", [None, "Token", "Token not-a-real-token", "Bearer whatever", "Basic b3duZXI6cGFzcw=="]
)
def test_requests_without_a_valid_token_get_401(header):
    client = Client(HTTP_AUTHORIZATION=header) if header else Client()
    response = client.get(LIST_URL)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Token")
    assert response.json()["error"]["code"] == "not_authenticated"


def test_a_logged_in_session_is_not_enough(owner, face_clip):
    # The API is csrf-exempt, so it must never accept the session cookie.
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.get(LIST_URL).status_code == 401
    response = client.post(LIST_URL, {"video": SimpleUploadedFile("a.mp4", face_clip), "frames": "20"})
    assert response.status_code == 401
    assert not Submission.objects.exists()


def test_a_revoked_token_stops_working(owner):
    token, secret = create_token(owner, "old")
    client = Client(HTTP_AUTHORIZATION=f"Token {secret}")
    assert client.get(LIST_URL).status_code == 200
    revoke_token(token)
    assert client.get(LIST_URL).status_code == 401


def test_a_token_of_a_deactivated_user_stops_working(owner):
    client = api_client(owner)
    owner.is_active = False
    owner.save()
    assert client.get(LIST_URL).status_code == 401


def test_using_a_token_records_when(owner):
    client = api_client(owner)
    client.get(LIST_URL)
    assert ApiToken.objects.get(user=owner).last_used_at is not None


# --- list ---------------------------------------------------------------------------------


def test_the_list_holds_only_my_submissions_paginated(owner, other):
    for i in range(3):
        make_submission(owner, name=f"mine-{i}.mp4")
    make_submission(other, name="theirs.mp4")
    first = api_client(owner).get(LIST_URL + "?page_size=2").json()
    assert first["count"] == 3 and first["pages"] == 2 and first["page"] == 1
    assert [s["original_name"] for s in first["results"]] == ["mine-2.mp4", "mine-1.mp4"]
    assert first["next"].endswith("?page=2&page_size=2") and first["previous"] is None
    second = api_client(owner).get(first["next"]).json()
    assert [s["original_name"] for s in second["results"]] == ["mine-0.mp4"]


def test_an_out_of_range_page_is_404(owner):
    response = api_client(owner).get(LIST_URL + "?page=9")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "invalid_page"


def test_the_list_refuses_put_with_405_and_allow(owner):
    response = api_client(owner).put(LIST_URL)
    assert response.status_code == 405
    assert response["Allow"] == "GET, POST"


# --- create --------------------------------------------------------------------------------


def test_posting_a_video_creates_a_queued_submission(owner, face_clip):
    response = api_client(owner).post(
        LIST_URL, {"video": SimpleUploadedFile("../../x/clip.mp4", face_clip), "frames": "40"}
    )
    assert response.status_code == 201
    body = response.json()
    submission = Submission.objects.get()
    assert submission.owner == owner
    assert body["id"] == str(submission.public_id)
    assert response["Location"] == "http://testserver" + detail_url(submission)
    assert body["status"] == "queued" and body["frames_requested"] == 40
    assert body["original_name"] == "clip.mp4"
    assert body["waiting_for_model"] is True
    assert submission.video.name == f"submissions/{submission.public_id}/video.mp4"


def test_posting_a_text_file_renamed_mp4_is_400_with_the_message(owner):
    response = api_client(owner).post(LIST_URL, {"video": SimpleUploadedFile("notes.mp4", b"hello\n" * 50)})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "not_a_video"
    assert "not a readable video" in error["message"]
    assert error["fields"]["video"][0]["code"] == "not_a_video"
    assert not Submission.objects.exists()


def test_posting_bad_frames_or_no_video_is_400(owner, face_clip):
    client = api_client(owner)
    bad_frames = client.post(LIST_URL, {"video": SimpleUploadedFile("a.mp4", face_clip), "frames": "7"})
    assert bad_frames.status_code == 400 and "frames" in bad_frames.json()["error"]["fields"]
    no_video = client.post(LIST_URL, {"frames": "20"})
    assert no_video.status_code == 400 and no_video.json()["error"]["code"] == "required"


def test_posting_an_oversized_body_is_413(owner, settings):
    settings.UPLOAD_MAX_BYTES = 1000
    response = api_client(owner).post(LIST_URL, {"frames": "20"}, CONTENT_LENGTH=str(5 * 1024 * 1024))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"


def test_a_chunked_upload_without_a_length_is_411_and_says_so(owner, face_clip):
    response = api_client(owner).post(
        LIST_URL,
        {"video": SimpleUploadedFile("a.mp4", face_clip), "frames": "20"},
        CONTENT_LENGTH="",
        HTTP_TRANSFER_ENCODING="chunked",
    )
    assert response.status_code == 411
    error = response.json()["error"]
    assert error["code"] == "length_required" and "Content-Length" in error["message"]
    assert not Submission.objects.exists()


def test_the_size_cap_applies_to_the_file_itself(owner, face_clip, settings):
    settings.UPLOAD_MAX_BYTES = len(face_clip) - 1
    response = api_client(owner).post(LIST_URL, {"video": SimpleUploadedFile("a.mp4", face_clip)})
    assert response.status_code == 400 and response.json()["error"]["code"] == "too_large"


# --- detail, delete ---------------------------------------------------------------------------


def test_the_detail_of_a_finished_submission_has_the_result_and_links(owner):
    submission = make_submission(owner)
    result = make_result(submission, frames=3, identities=(0, 1))
    body = api_client(owner).get(detail_url(submission)).json()
    assert body["status"] == "done" and body["progress"] == 100
    assert body["verdict"] == "FAKE" and body["fake_probability"] == pytest.approx(0.91)
    assert body["video_url"].endswith(reverse("submission-video", kwargs={"public_id": submission.public_id}))
    data = body["result"]
    assert data["frame_probabilities"] == result.frame_probabilities
    assert data["frame_timestamps"] == [0.0, 0.5, 1.0]
    assert data["model"] == {
        "name": result.model_name,
        "sha256": result.model_sha256,
        "metrics": {"val_auc": 0.912},
        "card_url": "http://testserver/model/",
    }
    assert len(data["frames"]) == 6 and {f["identity"] for f in data["frames"]} == {0, 1}
    assert data["processing_seconds"] == pytest.approx(4.2)
    crop_url = data["frames"][0]["crop_url"]
    assert crop_url.startswith("http://testserver/submissions/")
    # The crop links work with the same token.
    image = api_client(owner).get(crop_url)
    assert image.status_code == 200 and image["Content-Type"] == "image/png"


def test_the_detail_says_how_the_score_is_made_how_sure_it_is_and_what_it_means(owner):
    from ml_core.inference.score import SCORE_DEFINITION

    submission = make_submission(owner)
    result = make_result(submission, verdict="UNCERTAIN", fake_probability=0.66)
    result.details = {**result.details, "threshold": 0.6, "uncertain_band": 0.02}
    result.details.update(score_interval=[0.55, 0.74], interval_level=0.9)
    result.save()
    result.detector.metrics = {"test_scores": {"reals": [0.1, 0.7], "fakes": [0.5, 0.9], "threshold": 0.6}}
    result.detector.save()
    data = api_client(owner).get(detail_url(submission)).json()["result"]
    assert data["score_definition"] == SCORE_DEFINITION
    assert data["score_interval"] == {"low": 0.55, "high": 0.74, "level": 0.9}
    assert "likely range (55–74%) reaches both sides of the threshold" in data["uncertainty"]
    assert data["score_context"]["figures"]["reals_at_or_above"] == 1
    assert data["score_context"]["figures"]["false_positive_rate"] == 0.5
    assert data["score_context"]["sentence"].startswith("Of 2 real test videos, 1 scored at least this high")


def test_an_older_result_without_a_range_has_a_null_interval(owner):
    submission = make_submission(owner)
    make_result(submission)
    data = api_client(owner).get(detail_url(submission)).json()["result"]
    assert data["score_interval"] is None and data["uncertainty"] == ""
    assert data["score_context"]["figures"] is None


def test_the_detail_of_a_running_submission_has_progress_and_no_result(owner):
    submission = make_submission(owner, status="running", stage="classifying", progress=60)
    body = api_client(owner).get(detail_url(submission)).json()
    assert body["status"] == "running" and body["stage"] == "classifying" and body["progress"] == 60
    assert body["result"] is None and body["verdict"] is None


def test_the_detail_of_a_failed_submission_has_the_message(owner):
    submission = make_submission(owner, status="failed", stage="finished", error_message="No face was found.")
    body = api_client(owner).get(detail_url(submission)).json()
    assert body["status"] == "failed" and body["error_message"] == "No face was found."


def test_another_users_submission_is_404_for_get_and_delete(owner, other):
    submission = make_submission(owner)
    client = api_client(other)
    assert client.get(detail_url(submission)).status_code == 404
    assert client.delete(detail_url(submission)).status_code == 404
    assert Submission.objects.filter(pk=submission.pk).exists()


def test_a_reviewer_token_reads_anyones_submission_but_cannot_delete_it(owner):
    submission = make_submission(owner)
    client = api_client(make_user("reviewer", reviewer=True))
    assert client.get(detail_url(submission)).status_code == 200
    assert client.delete(detail_url(submission)).status_code == 404
    assert Submission.objects.filter(pk=submission.pk).exists()
    # Their own list stays their own.
    assert client.get(LIST_URL).json()["count"] == 0


def test_anonymous_detail_and_delete_are_401(owner):
    submission = make_submission(owner)
    assert Client().get(detail_url(submission)).status_code == 401
    assert Client().delete(detail_url(submission)).status_code == 401
    assert Submission.objects.filter(pk=submission.pk).exists()


def test_delete_removes_the_submission_and_its_files(owner, django_capture_on_commit_callbacks):
    submission = make_submission(owner)
    make_result(submission)
    storage, name = submission.video.storage, submission.video.name
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client(owner).delete(detail_url(submission))
    assert response.status_code == 204
    assert not Submission.objects.filter(pk=submission.pk).exists()
    assert not storage.exists(name)


def test_the_detail_refuses_post_and_put(owner):
    submission = make_submission(owner)
    client = api_client(owner)
    for method in (client.post, client.put, client.patch):
        response = method(detail_url(submission))
        assert response.status_code == 405
        assert response["Allow"] == "GET, DELETE"


# --- OpenAPI ---------------------------------------------------------------------------------


def test_the_openapi_document_describes_the_endpoints():
    response = Client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = json.loads(response.content)
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) == {
        "/submissions/",
        "/submissions/{id}/",
        "/submissions/{id}/report.json",
        "/submissions/{id}/report.pdf",
    }
    assert set(document["paths"]["/submissions/"]) == {"get", "post"}
    assert set(document["paths"]["/submissions/{id}/"]) >= {"get", "delete"}
    assert document["components"]["securitySchemes"]["TokenAuth"]["name"] == "Authorization"
    assert document["servers"] == [{"url": "http://testserver/api/v1"}]


def test_the_openapi_document_refuses_post():
    assert Client().post("/api/v1/openapi.json").status_code == 405
