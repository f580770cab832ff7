"""Uploads: server-side validation (name, extension, size, content probe, duration) and what gets stored."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from detector import validators
from detector.models import DetectorModel, Submission
from tests.conftest import reset_connections
from tests.helpers.malformed import png_mov_bomb
from tests.helpers.videos import make_face_video
from tests.helpers.web import make_user

pytestmark = pytest.mark.django_db

UPLOAD_URL = "/submissions/new/"


@pytest.fixture
def owner():
    return make_user("uploader")


@pytest.fixture
def client(owner):
    client = Client()
    client.force_login(owner)
    return client


@pytest.fixture(scope="module")
def face_clip(tmp_path_factory):
    path = make_face_video(tmp_path_factory.mktemp("clips") / "face.mp4", count=30, fps=10.0)
    return path.read_bytes()


def upload(client, data, name="clip.mp4", frames=20, **extra):
    fields = {"video": SimpleUploadedFile(name, data, content_type="video/mp4")}
    if frames is not None:
        fields["frames"] = str(frames)
    return client.post(UPLOAD_URL, fields, **extra)


def stored_files():
    if not default_storage.exists("submissions"):
        return []
    return default_storage.listdir("submissions")[0]


def form_errors(response):
    form = response.context["form"]
    return " ".join(str(e) for errors in form.errors.values() for e in errors)


def test_the_upload_url_is_the_named_route():
    assert reverse("submission-create") == UPLOAD_URL


def test_a_real_video_is_stored_under_a_server_chosen_name_and_lands_on_its_page(client, owner, face_clip):
    response = upload(client, face_clip, name="My holiday clip.MP4", frames=40)
    submission = Submission.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("submission-detail", kwargs={"public_id": submission.public_id})
    assert submission.owner == owner
    assert submission.video.name == f"submissions/{submission.public_id}/video.mp4"
    assert default_storage.exists(submission.video.name)
    assert submission.original_name == "My holiday clip.MP4"
    assert submission.frames_requested == 40
    assert submission.size_bytes == len(face_clip)
    assert submission.duration_seconds == pytest.approx(3.0, abs=0.2)
    # No detector model is installed here, so the real enqueue parks it waiting for one.
    assert submission.status == "queued" and submission.stage == "waiting_model"
    page = client.get(response["Location"]).content.decode()
    assert "Waiting for a detector model" in page


def test_frames_default_to_20(client, face_clip):
    upload(client, face_clip, frames=None)
    assert Submission.objects.get().frames_requested == 20


@pytest.mark.parametrize("frames", ["15", "0", "101", "abc"])
def test_frame_counts_outside_the_offered_choices_are_refused(client, face_clip, frames):
    response = upload(client, face_clip, frames=frames)
    assert response.status_code == 400
    assert "Select a valid choice" in form_errors(response)
    assert not Submission.objects.exists()


def test_it_rejects_a_text_file_renamed_to_mp4(client):
    response = upload(client, b"just some notes, not a video\n" * 100, name="notes.mp4")
    assert response.status_code == 400
    assert "not a readable video" in form_errors(response)
    assert not Submission.objects.exists()
    assert stored_files() == []


@pytest.mark.parametrize(
    ("make", "kind"), [("png_image", "PNG"), ("jpeg_image", "JPEG"), ("animated_gif", "GIF")]
)
def test_it_rejects_an_image_renamed_to_mp4(client, tmp_path, make, kind):
    from tests.helpers import malformed

    data = getattr(malformed, make)(tmp_path / "image.bin").read_bytes()
    response = upload(client, data, name="photo.mp4")
    assert response.status_code == 400
    assert f"This file is an image ({kind}), not a video" in form_errors(response)
    assert not Submission.objects.exists()


def test_it_rejects_a_disallowed_extension_before_probing(client, face_clip, monkeypatch):
    from ml_core.media import video

    def fail(path):
        raise AssertionError("the probe must not run for a refused extension")

    monkeypatch.setattr(video, "probe", fail)
    response = upload(client, face_clip, name="clip.exe")
    assert response.status_code == 400
    assert "“.exe” files are not accepted" in form_errors(response)
    assert "MP4" in form_errors(response)


def test_it_rejects_a_file_without_extension(client, face_clip):
    response = upload(client, face_clip, name="clip")
    assert "without an extension" in form_errors(response)


def test_it_rejects_a_file_over_the_size_cap(client, face_clip, settings):
    settings.UPLOAD_MAX_BYTES = 1000
    response = upload(client, face_clip)
    assert response.status_code == 400
    assert "the limit is 1000 bytes" in form_errors(response)
    assert not Submission.objects.exists()


def test_a_file_just_over_the_limit_reads_as_larger_than_the_limit(settings):
    settings.UPLOAD_MAX_BYTES = 5 * 1024 * 1024
    with pytest.raises(ValidationError) as info:
        validators.validate_size(5_243_904)
    assert "This file is 5,243,904 bytes; the limit is 5,242,880 bytes (5 MB)." in info.value.messages[0]


def test_a_file_well_over_the_limit_reads_in_megabytes(settings):
    settings.UPLOAD_MAX_BYTES = 5 * 1024 * 1024
    with pytest.raises(ValidationError) as info:
        validators.validate_size(7 * 1024 * 1024)
    assert "This file is 7 MB; the limit is 5 MB." in info.value.messages[0]


def test_a_chunked_upload_without_a_length_is_asked_for_one(client, face_clip):
    # A chunked request has no Content-Length, and Django reads no body without one.
    response = upload(client, face_clip, CONTENT_LENGTH="", HTTP_TRANSFER_ENCODING="chunked")
    assert response.status_code == 411
    html = response.content.decode()
    assert "without its length" in html and "Content-Length" in html
    assert "This field is required" not in html
    assert not Submission.objects.exists() and stored_files() == []


def test_a_declared_oversized_body_is_refused_before_it_is_read(client, settings):
    settings.UPLOAD_MAX_BYTES = 1000
    response = client.post(UPLOAD_URL, {"frames": "20"}, CONTENT_LENGTH=str(10 * 1024 * 1024))
    assert response.status_code == 413
    assert "larger than the 1000 bytes limit" in response.content.decode()


def test_it_rejects_a_video_over_the_duration_cap(client, face_clip, settings):
    settings.UPLOAD_MAX_SECONDS = 2
    response = upload(client, face_clip)
    assert response.status_code == 400
    errors = form_errors(response)
    assert "This video is 3 s long; the limit is 2 s" in errors
    assert not Submission.objects.exists()


@pytest.fixture(scope="module")
def png_bomb(tmp_path_factory):
    return png_mov_bomb(tmp_path_factory.mktemp("bomb") / "bomb.mov")  # 12000x12000, ~0.5 MB


def test_it_rejects_frames_larger_than_4k_and_stores_nothing(client, png_bomb):
    response = upload(client, png_bomb.read_bytes(), name="bomb.mov")
    assert response.status_code == 400
    assert "larger than 3840×2160 (4K). Re-encode it at 4K or below" in form_errors(response)
    assert not Submission.objects.exists() and stored_files() == []


# Growth of the peak RSS (VmHWM: unlike getrusage's figure it is not inherited from pytest across
# exec) during one upload check, in MB. A small real video is checked first so that imports and
# FFmpeg's own set-up are not counted.
CHECK_PEAK = """
import re, sys
import django
django.setup()
from django.core.exceptions import ValidationError
from detector import uploads

def peak_mb():
    with open("/proc/self/status") as status:
        return int(re.search(r"VmHWM:\\s+(\\d+) kB", status.read()).group(1)) / 1024

uploads.check_video(sys.argv[2])
before = peak_mb()
try:
    uploads.check_video(sys.argv[1])
except ValidationError as exc:
    print("refused:", exc.messages[0])
print(round(peak_mb() - before))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc (Linux)")
def test_checking_a_png_bomb_never_holds_a_decoded_frame(png_bomb, tmp_path):
    small = make_face_video(tmp_path / "face.mp4", count=5)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "deepfake_site.settings"}
    done = subprocess.run(
        [sys.executable, "-c", CHECK_PEAK, str(png_bomb), str(small)],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    *lines, growth = done.stdout.split("\n")[:-1]
    print(f"peak memory growth while checking a 12000x12000 PNG MOV: {growth} MB; {lines}")
    assert lines and lines[0].startswith("refused:") and "4K" in lines[0]
    # One decoded frame is 144 MB; the check must not come near it.
    assert int(growth) < 40


def test_it_rejects_an_empty_file(client):
    response = upload(client, b"", name="empty.mp4")
    assert response.status_code == 400
    assert "empty" in form_errors(response).lower()


def test_a_missing_file_is_reported(client):
    response = client.post(UPLOAD_URL, {"frames": "20"})
    assert response.status_code == 400
    assert "Choose a video file or paste a link." in form_errors(response)


def test_large_uploads_are_probed_from_a_temporary_file_on_disk(client, face_clip, settings, monkeypatch):
    from ml_core.media import video

    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1024  # our clip is larger: Django must spool it to disk
    seen = []
    real_probe = video.probe
    monkeypatch.setattr(video, "probe", lambda path: seen.append(str(path)) or real_probe(path))
    response = upload(client, face_clip)
    assert response.status_code == 302
    assert len(seen) == 1 and seen[0].endswith(".upload.mp4")  # Django's TemporaryUploadedFile


def test_the_xhr_upload_gets_json_back(client, face_clip):
    ok = upload(client, face_clip, HTTP_X_REQUESTED_WITH="XMLHttpRequest")
    assert ok.status_code == 201
    submission = Submission.objects.get()
    assert ok.json() == {"redirect": reverse("submission-detail", kwargs={"public_id": submission.public_id})}
    bad = upload(client, b"text", name="notes.mp4", HTTP_X_REQUESTED_WITH="XMLHttpRequest")
    assert bad.status_code == 400
    assert "not a readable video" in bad.json()["errors"]["video"][0]


def test_the_upload_page_shows_the_form_and_the_client_side_limit(client, settings):
    settings.UPLOAD_MAX_BYTES = 5 * 1024 * 1024
    html = client.get(UPLOAD_URL).content.decode()
    assert 'enctype="multipart/form-data"' in html
    assert f'data-max-bytes="{5 * 1024 * 1024}"' in html
    for frames in (10, 20, 40, 60, 80, 100):
        assert f'value="{frames}"' in html
    assert 'value="20" selected' in html
    assert "js/upload.js" in html


def test_the_upload_page_needs_a_login():
    response = Client().get(UPLOAD_URL)
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    response = Client().post(UPLOAD_URL, {})
    assert response.status_code == 302
    assert not Submission.objects.exists()


def test_the_upload_page_refuses_put(client):
    assert client.put(UPLOAD_URL).status_code == 405


def test_the_upload_form_needs_a_csrf_token(owner, face_clip):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    response = upload(client, face_clip)
    assert response.status_code == 403
    assert not Submission.objects.exists()


def test_with_the_broker_down_the_user_still_lands_on_the_page(
    client, face_clip, django_capture_on_commit_callbacks
):
    from deepfake_site.celery import app

    DetectorModel.objects.create(name="m", sha256="cd" * 32, is_active=True)
    saved = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    reset_connections(app)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = upload(client, face_clip)
    finally:
        app.conf.broker_url = saved
        reset_connections(app)  # also drops the routes cached by this send
    assert response.status_code == 302
    submission = Submission.objects.get()
    assert submission.status == "queued" and submission.dispatched_at is None
    assert "will start shortly" in client.get(response["Location"]).content.decode()


# --- the validators themselves --------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("../../etc/passwd.mp4", "passwd.mp4"),
        ("C:\\Users\\me\\Videos\\clip.mp4", "clip.mp4"),
        ("bad\x00name\x07.mp4", "badname.mp4"),
        ("evil\u202egpj.mp4", "evilgpj.mp4"),
        ("  spaced   out .mp4 ", "spaced out .mp4"),
        ("", "video"),
        ("/", "video"),
    ],
)
def test_display_names_are_sanitised(raw, expected):
    assert validators.clean_display_name(raw) == expected


def test_long_display_names_are_capped_and_keep_their_extension():
    name = validators.clean_display_name("x" * 500 + ".mp4")
    assert len(name) <= validators.DISPLAY_NAME_MAX
    assert name.endswith("….mp4")


def test_extensions_are_case_insensitive_and_allow_listed():
    assert validators.validate_extension("CLIP.MOV") == ".mov"
    assert validators.validate_extension("a.webm") == ".webm"
    with pytest.raises(Exception, match="not accepted"):
        validators.validate_extension("clip.mp4.php")
