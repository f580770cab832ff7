"""Hostile uploads through the upload page and the API: each ends in a clear message, nothing half-saved.

Files that cannot be a usable video must be refused at upload (400 with a message, no row, no
file). Files that are real videos with lying headers may be accepted, but then the job must end
(DONE, or FAILED with a message) and never hang or crash the worker.
"""

import io
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from detector.models import Result, Submission, User
from detector.tasks import analyze_submission
from detector.tokens import create_token
from tests.detector._worker_support import install_tiny_model
from tests.helpers import malformed
from tests.helpers.videos import make_blank_video, make_face_video

pytestmark = pytest.mark.django_db

Status = Submission.Status


@pytest.fixture
def uploader(client, settings, tmp_path):
    """Upload a file through the page ("form") or the API and report what happened."""
    settings.DETECTOR_CACHE_DIR = str(tmp_path / "model-cache")
    user = User.objects.create_user("mallory", password="pw-mallory-123")
    secret = create_token(user, "tests")[1]
    client.force_login(user)

    def upload(path, via, name=None, frames="20"):
        data = Path(path).read_bytes()
        upload_file = SimpleUploadedFile(name or Path(path).name, data, content_type="video/mp4")
        if via == "form":
            response = client.post(reverse("submission-create"), {"video": upload_file, "frames": frames})
        else:
            response = client.post(
                reverse("api-submission-list"),
                {"video": upload_file, "frames": frames},
                HTTP_AUTHORIZATION=f"Token {secret}",
            )
        return response

    upload.user = user
    return upload


def media_files(settings):
    root = Path(settings.MEDIA_ROOT) / "submissions"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def assert_refused(response, settings, *words):
    """400/413 with a human message (containing any of `words`), and nothing saved."""
    assert response.status_code in (400, 413), response.status_code
    text = response.content.decode()
    if response["Content-Type"].startswith("application/json"):
        message = response.json()["error"]["message"]
    else:
        message = text
    assert any(word.lower() in message.lower() for word in words), message[:2000]
    assert Submission.objects.count() == 0
    assert media_files(settings) == []


REFUSED_AT_UPLOAD = [
    ("text renamed to .mp4", malformed.text_file, "clip.mp4", ["not a readable video"]),
    ("HTML renamed to .mp4", malformed.html_file, "page.mp4", ["not a readable video"]),
    ("zero-byte file", malformed.empty_file, "empty.mp4", ["empty"]),
    ("MP4 cut before its index", malformed.header_only_mp4, "cut.mp4", ["damaged", "incomplete", "not a"]),
    ("MP4 with only audio", malformed.audio_only_mp4, "audio.mp4", ["no video track"]),
    ("10-hour declared duration", malformed.long_declared_duration_mp4, "long.mp4", ["long", "limit"]),
    ("GIF with its own name", malformed.animated_gif, "anim.gif", ["not accepted"]),
    ("PNG renamed to .mp4", malformed.png_image, "photo.mp4", ["not a", "image", "video"]),
    ("JPEG renamed to .mp4", malformed.jpeg_image, "photo.mp4", ["not a", "image", "video"]),
    ("GIF renamed to .mp4", malformed.animated_gif, "anim.mp4", ["not a", "gif", "video"]),
    ("H.264 decompression bomb (8192x8192 frames)", malformed.decompression_bomb, "bomb.mp4", ["4K"]),
    ("PNG-in-MOV bomb (12000x12000 frames)", malformed.png_mov_bomb, "bomb.mov", ["4K"]),
    (
        "PNG frames larger than the headers say",
        malformed.png_mov_bomb_behind_small_headers,
        "liar.mov",
        ["4K"],
    ),
]


@pytest.mark.parametrize("via", ["form", "api"])
@pytest.mark.parametrize(
    ("case", "make", "name", "words"), REFUSED_AT_UPLOAD, ids=[c[0] for c in REFUSED_AT_UPLOAD]
)
def test_it_refuses_a_file_that_is_not_a_usable_video(
    uploader, settings, tmp_path, via, case, make, name, words
):
    path = make(tmp_path / ("input" + Path(name).suffix))
    response = uploader(path, via, name=name)
    assert_refused(response, settings, *words)


@pytest.mark.parametrize("via", ["form", "api"])
@pytest.mark.parametrize("frames", ["9", "101", "0", "-20", "15", "twenty", "1e2", "20.5", "", "NaN"])
def test_it_refuses_a_frame_count_outside_10_to_100_or_not_a_number(
    uploader, settings, tmp_path, via, frames
):
    video = make_face_video(tmp_path / "face.mp4", count=10, size=(160, 120), face_size=100)
    response = uploader(video, via, frames=frames)
    if frames == "":
        # An empty field means "the default" (20), which is a valid request.
        assert response.status_code in (201, 302)
        assert Submission.objects.get().frames_requested == 20
        return
    assert_refused(response, settings, "frame", "valid choice", "select")


def run_job(submission):
    Submission.objects.filter(pk=submission.pk).update(status=Status.QUEUED)
    analyze_submission.apply(args=[submission.pk])
    submission.refresh_from_db()
    return submission


ACCEPTED_OR_CLEAN = [
    ("absurd declared frame count", malformed.absurd_frame_count_mp4, []),
    ("absurd declared resolution", malformed.absurd_resolution_mp4, []),
    ("MP4 with its frame data cut in half", malformed.truncated_mp4, ["damaged", "incomplete"]),
]


@pytest.mark.parametrize(("case", "make", "words"), ACCEPTED_OR_CLEAN, ids=[c[0] for c in ACCEPTED_OR_CLEAN])
def test_a_video_with_lying_headers_is_refused_or_its_job_ends_cleanly(
    uploader, settings, tmp_path, case, make, words
):
    install_tiny_model(tmp_path)
    path = make(tmp_path / "input.mp4")
    response = uploader(path, "form", name="input.mp4")
    if response.status_code != 302:
        assert_refused(response, settings, *(words or ["video"]))
        return
    submission = run_job(Submission.objects.get())
    assert submission.status in (Status.DONE, Status.FAILED)
    if submission.status == Status.FAILED:
        assert any(w in submission.error_message.lower() for w in words), submission.error_message
        assert not Result.objects.filter(submission=submission).exists()
        assert [p for p in media_files(settings) if "/results/" in str(p)] == []


def test_a_video_with_no_face_is_accepted_and_fails_with_a_no_face_message(uploader, settings, tmp_path):
    install_tiny_model(tmp_path)
    response = uploader(make_blank_video(tmp_path / "blank.mp4"), "form")
    assert response.status_code == 302
    submission = run_job(Submission.objects.get())
    assert submission.status == Status.FAILED
    assert "no face" in submission.error_message.lower()
    assert not Result.objects.filter(submission=submission).exists()
    assert [p for p in media_files(settings) if "/results/" in str(p)] == []


@pytest.mark.parametrize("kind", sorted(malformed.HOSTILE_NAMES))
def test_a_hostile_file_name_is_stored_under_a_server_chosen_path_and_shown_harmlessly(
    uploader, client, settings, tmp_path, kind
):
    hostile = malformed.HOSTILE_NAMES[kind]
    video = make_face_video(tmp_path / "face.mp4", count=10, size=(160, 120), face_size=100)
    response = uploader(video, "form", name=hostile)
    assert response.status_code == 302, response.content[:2000]
    submission = Submission.objects.get()
    assert submission.video.name == f"submissions/{submission.public_id}/video.mp4"
    assert media_files(settings) == [Path(settings.MEDIA_ROOT) / submission.video.name]
    shown = submission.original_name
    assert "\x00" not in shown and "/" not in shown and "\\" not in shown and ".." not in shown.split("/")
    assert "\u202e" not in shown
    assert len(shown) <= 255
    page = client.get(reverse("submission-detail", kwargs={"public_id": submission.public_id}))
    assert page.status_code == 200
    assert b"<img src=x" not in page.content  # escaped, never markup
    download = client.get(reverse("submission-video", kwargs={"public_id": submission.public_id}))
    disposition = download["Content-Disposition"]
    assert "\x00" not in disposition and "\n" not in disposition and "../" not in disposition


def test_a_polyglot_mp4_html_zip_is_served_only_as_a_video_download(uploader, client, settings, tmp_path):
    response = uploader(malformed.polyglot_mp4(tmp_path / "poly.mp4"), "form", name="poly.html")
    # The name says HTML: refused by extension, whatever the content.
    assert_refused(response, settings, "not accepted")
    response = uploader(malformed.polyglot_mp4(tmp_path / "poly.mp4"), "form", name="poly.mp4")
    assert response.status_code == 302
    submission = Submission.objects.get()
    download = client.get(reverse("submission-video", kwargs={"public_id": submission.public_id}))
    assert download.status_code == 200
    assert download["Content-Type"] == "video/mp4"
    # Inline is fine for the <video> player: with nosniff, a browser never reads it as HTML.
    assert download["X-Content-Type-Options"] == "nosniff"
    assert "html" not in download["Content-Disposition"].lower()


# --- the size cap ----------------------------------------------------------------------------------


def multipart_body(boundary, size, frames="20"):
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="frames"\r\n\r\n{frames}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="video"; filename="big.mp4"\r\n'
        "Content-Type: video/mp4\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    return head + b"\x00" * size + tail


def call_wsgi(path, body, user=None, token=None, declared_length="honest"):
    """Send a raw multipart body through Django's request handling, as gunicorn hands it over.

    gunicorn de-chunks a `Transfer-Encoding: chunked` request and passes it on with no
    CONTENT_LENGTH; `declared_length=None` reproduces that, an int makes the header lie.
    """
    from django.test import Client
    from django.test.client import ClientHandler

    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(),
        "CONTENT_TYPE": "multipart/form-data; boundary=xYzZY",
        "HTTP_TRANSFER_ENCODING": "chunked",
    }
    if declared_length == "honest":
        environ["CONTENT_LENGTH"] = str(len(body))
    elif declared_length is not None:
        environ["CONTENT_LENGTH"] = str(declared_length)
    if user is not None:
        session_client = Client()
        session_client.force_login(user)
        environ["HTTP_COOKIE"] = "; ".join(f"{k}={v.value}" for k, v in session_client.cookies.items())
    if token:
        environ["HTTP_AUTHORIZATION"] = f"Token {token}"
    response = ClientHandler(enforce_csrf_checks=False)(environ)
    return response.status_code, response.content


@pytest.fixture
def small_cap(settings):
    settings.UPLOAD_MAX_BYTES = 256 * 1024
    return settings.UPLOAD_MAX_BYTES


@pytest.mark.parametrize("via", ["form", "api"])
def test_an_upload_over_the_size_cap_is_refused_from_its_declared_length(uploader, settings, small_cap, via):
    user = uploader.user
    secret = create_token(user, "cap")[1]
    path = reverse("submission-create") if via == "form" else reverse("api-submission-list")
    body = multipart_body("xYzZY", small_cap + 70 * 1024)
    if via == "api":
        status, content = call_wsgi(path, body, token=secret)
    else:
        status, content = call_wsgi(path, body, user=user)
    assert status == 413, status
    assert Submission.objects.count() == 0
    assert media_files(settings) == []
    assert b"limit" in content


@pytest.mark.parametrize("lie", ["no content-length", "content-length smaller than the body"])
def test_an_upload_over_the_size_cap_without_an_honest_content_length_saves_nothing(
    uploader, settings, small_cap, lie
):
    secret = create_token(uploader.user, "cap")[1]
    body = multipart_body("xYzZY", small_cap * 3)
    declared = None if lie == "no content-length" else 4096
    status, content = call_wsgi(reverse("api-submission-list"), body, token=secret, declared_length=declared)
    assert status in (400, 411, 413), (status, content[:500])
    assert b"message" in content  # the API always explains itself
    if declared is None:  # Django would read no body: ask for the length, not for the file
        assert status == 411 and b"Content-Length" in content, (status, content[:500])
    assert Submission.objects.count() == 0
    assert media_files(settings) == []
