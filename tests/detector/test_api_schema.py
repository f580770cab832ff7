"""Real API responses, checked against the OpenAPI document we publish (static/api/openapi.json).

openapi-core validates status, headers and body of each response against the document, so a
field renamed in the code or a status the document does not list fails here.
"""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from openapi_core import OpenAPI
from openapi_core.contrib.django import DjangoOpenAPIResponse
from openapi_core.exceptions import OpenAPIError
from openapi_core.testing import MockRequest

from deepfake_site.settings import BASE_DIR
from detector.tokens import create_token
from tests.helpers.videos import make_face_video
from tests.helpers.web import make_result, make_submission

pytestmark = pytest.mark.django_db

LIST_URL = "/api/v1/submissions/"
SPEC = OpenAPI.from_file_path(str(BASE_DIR / "static" / "api" / "openapi.json"))


def api_client(user):
    return Client(HTTP_AUTHORIZATION=f"Token {create_token(user, 'schema')[1]}")


def assert_matches_the_document(response):
    # The request only picks the operation (path and method); an upload's body is already consumed.
    request = response.wsgi_request
    SPEC.validate_response(
        MockRequest("http://testserver", request.method.lower(), request.path),
        DjangoOpenAPIResponse(response),
    )


@pytest.fixture(scope="module")
def face_clip(tmp_path_factory):
    return make_face_video(tmp_path_factory.mktemp("clips") / "face.mp4", count=20).read_bytes()


def test_the_list_and_details_match_the_document(owner):
    done = make_submission(owner, status="done", stage="done")
    make_result(done, identities=(0, 1))
    queued = make_submission(owner, name="second.mp4")
    client = api_client(owner)
    for url in (LIST_URL, f"{LIST_URL}{done.public_id}/", f"{LIST_URL}{queued.public_id}/"):
        response = client.get(url)
        assert response.status_code == 200
        assert_matches_the_document(response)
    assert len(client.get(LIST_URL).json()["results"]) == 2


def test_a_result_with_its_likely_range_and_test_figures_matches_the_document(owner):
    done = make_submission(owner, status="done", stage="done")
    result = make_result(done)
    result.details = {**result.details, "score_interval": [0.8, 0.95], "interval_level": 0.9}
    result.save()
    result.detector.metrics = {"test_scores": {"reals": [0.1], "fakes": [0.9], "threshold": 0.5, "auc": 1.0}}
    result.detector.save()
    response = api_client(owner).get(f"{LIST_URL}{done.public_id}/")
    assert response.json()["result"]["score_interval"]["low"] == 0.8
    assert_matches_the_document(response)


def test_an_upload_and_its_refusals_match_the_document(owner, face_clip, settings):
    client = api_client(owner)
    created = client.post(LIST_URL, {"video": SimpleUploadedFile("clip.mp4", face_clip), "frames": "20"})
    assert created.status_code == 201
    not_video = client.post(LIST_URL, {"video": SimpleUploadedFile("notes.mp4", b"hello\n" * 50)})
    assert not_video.status_code == 400
    settings.UPLOAD_MAX_BYTES = 1000
    too_large = client.post(LIST_URL, {"frames": "20"}, CONTENT_LENGTH=str(5 * 1024 * 1024))
    assert too_large.status_code == 413
    no_length = client.post(LIST_URL, {"frames": "20"}, CONTENT_LENGTH="", HTTP_TRANSFER_ENCODING="chunked")
    assert no_length.status_code == 411
    for response in (created, not_video, too_large, no_length):
        assert_matches_the_document(response)


def test_errors_and_deletion_match_the_document(owner, other):
    mine = make_submission(owner)
    for response, status in (
        (Client().get(LIST_URL), 401),
        (api_client(other).get(f"{LIST_URL}{mine.public_id}/"), 404),
        (api_client(owner).get(f"{LIST_URL}?page=99"), 404),
        (api_client(owner).delete(f"{LIST_URL}{mine.public_id}/"), 204),
    ):
        assert response.status_code == status
        assert_matches_the_document(response)


def test_a_response_that_breaks_the_document_is_caught(owner):
    """The check itself can fail: a body missing a required field does not pass."""
    response = api_client(owner).get(f"{LIST_URL}{make_submission(owner).public_id}/")
    body = response.json()
    del body["status"]
    response.content = json.dumps(body).encode()
    with pytest.raises(OpenAPIError):
        assert_matches_the_document(response)
