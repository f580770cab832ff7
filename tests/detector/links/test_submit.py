"""Sending a link: the upload page, the API and `manage.py analyze`. Bad links are refused at once
with their own message and store nothing; a good one answers at once with a fetching submission
whose job goes to the fetch queue (not the GPU's); links are rate limited per user."""

import io
import os
import subprocess
import sys
from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import Client

from detector.models import Submission
from detector.tasks import fetch_link
from detector.tokens import create_token

pytestmark = pytest.mark.django_db

UPLOAD_URL = "/submissions/new/"
API_URL = "/api/v1/submissions/"
GOOD = "https://video.example/post/1"

BAD_LINKS = [
    ("not a link", "not a web address"),
    ("video.example/post/1", "not a web address"),
    ("ftp://video.example/clip.mp4", "Only http:// and https://"),
    ("file:///etc/passwd", "Only http:// and https://"),
    ("https://me:secret@video.example/post/1", "user name or password"),
    ("http://127.0.0.1/", "private, local or reserved"),
    ("http://localhost:8000/admin/", "private, local or reserved"),
    ("http://169.254.169.254/latest/meta-data/", "private, local or reserved"),
    ("http://[::1]/", "private, local or reserved"),
    ("https://video.example/" + "a" * 2100, "longer than 2000"),
]


@pytest.fixture
def browser_client(owner):
    client = Client()
    client.force_login(owner)
    return client


@pytest.fixture
def api(owner):
    return Client(HTTP_AUTHORIZATION=f"Token {create_token(owner, 'links')[1]}")


@pytest.fixture
def fetches():
    """Capture fetch jobs instead of publishing them."""
    with mock.patch.object(fetch_link, "apply_async") as apply_async:
        yield apply_async


def test_a_link_from_the_page_answers_at_once_with_a_fetching_submission(
    browser_client, owner, fetches, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = browser_client.post(UPLOAD_URL, {"link": f"  {GOOD}  ", "frames": "40"})
    submission = Submission.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/submissions/{submission.public_id}/"
    assert (submission.owner, submission.source_url, submission.frames_requested) == (owner, GOOD, 40)
    assert (submission.status, submission.stage, submission.original_name) == (
        "fetching",
        "fetch_waiting",
        "video.example",
    )
    assert not submission.video
    assert fetches.call_args.kwargs["args"] == [submission.pk]
    submission.refresh_from_db()
    assert submission.dispatched_at is not None

    page = browser_client.get(response["Location"]).content.decode()
    assert 'id="live-status"' in page and "Waiting to fetch the video from the link." in page
    assert 'data-testid="provenance"' in page and GOOD in page
    status = browser_client.get(f"/submissions/{submission.public_id}/status.json").json()
    assert (status["status"], status["finished"], status["fetch"]) == (
        "fetching",
        False,
        {"bytes": 0, "total_bytes": None},
    )


def test_the_status_shows_bytes_and_percent_while_fetching(browser_client, owner, fetches):
    browser_client.post(UPLOAD_URL, {"link": GOOD})
    Submission.objects.update(
        stage="fetching", fetch_bytes=3 * 1024 * 1024, fetch_total_bytes=12 * 1024 * 1024, progress=25
    )
    submission = Submission.objects.get()
    status = browser_client.get(f"/submissions/{submission.public_id}/status.json").json()
    assert status["message"] == "Fetching the video from the link: 3 MB of 12 MB (25%)."
    assert status["progress"] == 25 and status["fetch"] == {
        "bytes": 3 * 1024 * 1024,
        "total_bytes": 12 * 1024 * 1024,
    }


def test_the_fetch_job_goes_to_its_own_queue_not_the_gpu_one(settings):
    from deepfake_site.celery import app

    route = app.amqp.router.route({}, "detector.tasks.fetch_link")["queue"].name
    assert route == settings.CELERY_FETCH_QUEUE == "fetch" != settings.CELERY_GPU_QUEUE


@pytest.mark.parametrize(("link", "words"), BAD_LINKS)
def test_a_bad_link_is_refused_on_the_page_with_its_message(browser_client, fetches, link, words):
    response = browser_client.post(UPLOAD_URL, {"link": link})
    assert response.status_code == 400 and words in response.content.decode()
    assert not Submission.objects.exists() and not fetches.called


@pytest.mark.parametrize(("link", "words"), BAD_LINKS)
def test_a_bad_link_is_refused_by_the_api_with_its_code(api, fetches, link, words):
    response = api.post(API_URL, {"url": link})
    body = response.json()["error"]
    assert response.status_code == 400 and words in body["message"]
    assert body["code"] in {
        "not_a_url",
        "unsupported_scheme",
        "credentials_in_url",
        "blocked_address",
        "link_failed",
    }
    assert not Submission.objects.exists() and not fetches.called


def test_a_file_and_a_link_together_are_refused(browser_client, api):
    video = SimpleUploadedFile("clip.mp4", b"x" * 100, content_type="video/mp4")
    response = browser_client.post(UPLOAD_URL, {"link": GOOD, "video": video})
    assert response.status_code == 400 and "not both" in response.content.decode()
    video.seek(0)
    response = api.post(API_URL, {"url": GOOD, "video": video})
    assert response.status_code == 400 and response.json()["error"]["code"] == "video_and_link"
    assert not Submission.objects.exists()


def test_neither_a_file_nor_a_link_is_refused(browser_client, api):
    assert (
        "Choose a video file or paste a link."
        in browser_client.post(UPLOAD_URL, {"frames": "20"}).content.decode()
    )
    assert api.post(API_URL, {"frames": "20"}).json()["error"]["code"] == "required"


def test_the_api_takes_a_url_and_answers_201_with_the_fetching_submission(
    api, fetches, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(API_URL, {"url": GOOD, "frames": "20"})
    body = response.json()
    assert response.status_code == 201 and response["Location"].endswith(f"/{body['id']}/")
    assert (body["status"], body["stage"]) == ("fetching", "fetch_waiting")
    assert body["source"]["url"] == GOOD and body["source"]["sha256"] == "" and body["fetch"]["bytes"] == 0
    assert fetches.called


def test_links_are_rate_limited_per_user(browser_client, api, other, settings, fetches):
    settings.LINK_RATE_LIMIT_PER_HOUR = 2
    assert browser_client.post(UPLOAD_URL, {"link": GOOD}).status_code == 302
    assert api.post(API_URL, {"url": GOOD}).status_code == 201
    page = browser_client.post(UPLOAD_URL, {"link": GOOD})
    assert page.status_code == 429 and "2 links in the last hour" in page.content.decode()
    refused = api.post(API_URL, {"url": GOOD})
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
    assert refused["Retry-After"]
    assert Submission.objects.count() == 2
    # Another user has an allowance of their own.
    from detector.links.submit import create_link_submission

    assert create_link_submission(other, GOOD, 20).source_url == GOOD


def test_the_analyze_command_takes_links_next_to_files(owner, fetches, django_capture_on_commit_callbacks):
    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("analyze", GOOD, "--user", owner.username, stdout=out)
    submission = Submission.objects.get()
    assert f"fetching {submission.public_id} {GOOD}" in out.getvalue() and fetches.called
    with pytest.raises(CommandError, match="private, local or reserved"):
        call_command("analyze", "http://10.0.0.1/x.mp4", "--user", owner.username, stdout=io.StringIO())
    assert Submission.objects.count() == 1


def test_production_refuses_the_private_address_setting():
    from tests.deepfake_site.test_settings import PRODUCTION_ENV, run_manage

    result = run_manage("check", extra_env={**PRODUCTION_ENV, "LINK_ALLOW_PRIVATE_ADDRESSES": "true"})
    assert result.returncode != 0 and "LINK_ALLOW_PRIVATE_ADDRESSES must not be on" in result.stderr


def test_link_answers_match_the_published_api_document(api, fetches, settings):
    from tests.detector.test_api_schema import assert_matches_the_document

    settings.LINK_RATE_LIMIT_PER_HOUR = 1
    created = api.post(API_URL, {"url": GOOD})
    assert created.status_code == 201
    assert_matches_the_document(created)
    assert_matches_the_document(api.get(f"{API_URL}{created.json()['id']}/"))
    for refused in (api.post(API_URL, {"url": "ftp://x.example/"}), api.post(API_URL, {"url": GOOD})):
        assert refused.status_code in (400, 429)
        assert_matches_the_document(refused)


def test_the_web_process_and_the_gpu_worker_never_load_yt_dlp():
    code = "import django, sys; django.setup(); import detector.tasks; print('yt_dlp' in sys.modules)"
    child = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "deepfake_site.settings"},
    )
    assert child.stdout.strip() == "False"
