"""Media storage full or read-only: a clear, retryable answer (507 / 503, JSON in the API), and
no partial file left behind, at upload and while the worker saves face crops.

Two ways to fill the disk: DiskFullStorage (tests/helpers/storages.py), where Django's own
file system storage gets ENOSPC part-way through a write, and, where the test may mount one
(root), a real tmpfs of a few kilobytes, full or read-only, as MEDIA_ROOT.
"""

import os
import shutil
import subprocess

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import Client

from detector import media_files
from detector.models import FrameImage, Result, Submission
from detector.tasks import analyze_submission
from detector.tokens import create_token
from tests.detector._worker_support import face_video, install_tiny_model, make_user, stored_submission
from tests.detector.test_api_schema import assert_matches_the_document
from tests.faults.conftest import files_under
from tests.helpers.storages import DiskFullStorage
from tests.helpers.videos import write_video
from tests.helpers.web import PASSWORD

pytestmark = pytest.mark.django_db

Status = Submission.Status
API_URL = "/api/v1/submissions/"
PAGE_URL = "/submissions/new/"  # detector.urls: submission-create


@pytest.fixture
def disk_full_after(settings, monkeypatch, tmp_path):
    """Switch media storage to DiskFullStorage (what MEDIA_STORAGE_BACKEND selects in a worker)."""
    settings.DETECTOR_CACHE_DIR = str(tmp_path / "model-cache")
    settings.DETECTOR_EXPLAIN = False

    def arm(count, match="/results/", written=0):
        monkeypatch.setenv("DISK_FULL_AFTER", str(count))
        monkeypatch.setenv("DISK_FULL_MATCH", match)
        monkeypatch.setenv("DISK_FULL_BYTES", str(written))
        DiskFullStorage.reset()
        settings.STORAGES = settings.STORAGES | {
            "default": {"BACKEND": "tests.helpers.storages.DiskFullStorage", "OPTIONS": {}}
        }

    return arm


@pytest.fixture
def tiny_disk(settings):
    """Factory: mount a tmpfs of `size` (optionally read-only) as MEDIA_ROOT; skip where we may not."""
    mounted = []

    def mount(size="64k", read_only=False):
        if os.geteuid() != 0 or shutil.which("mount") is None:
            pytest.skip("mounting a tmpfs needs root; the DiskFullStorage tests cover the same path")
        root = settings.MEDIA_ROOT
        root.mkdir(parents=True, exist_ok=True)
        options = f"size={size},mode=0755" + (",ro" if read_only else "")
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(root)], capture_output=True, text=True
        )
        if done.returncode:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounted.append(root)
        return root

    yield mount
    for root in mounted:
        subprocess.run(["umount", str(root)], check=True)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A real video of noise (it compresses badly): more than the tiny disk holds, several chunks."""
    frames = np.random.default_rng(0).integers(0, 256, (10, 240, 320, 3), dtype=np.uint8)
    data = write_video(tmp_path_factory.mktemp("clips") / "noise.mp4", list(frames)).read_bytes()
    assert len(data) > 3 * 64 * 1024
    return data


def api_client(user):
    return Client(HTTP_AUTHORIZATION=f"Token {create_token(user, 'tests')[1]}")


def page_client(user):
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


def media_files_left(settings):
    root = settings.MEDIA_ROOT
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def post_api(user, clip):
    return api_client(user).post(API_URL, {"video": SimpleUploadedFile("a.mp4", clip), "frames": "10"})


# --- uploads ----------------------------------------------------------------------------------


@pytest.mark.parametrize("written", [0, 131_072], ids=["nothing-written", "two-chunks-written"])
def test_the_api_answers_507_in_json_when_the_disk_fills_up_and_keeps_no_partial_file(
    settings, disk_full_after, clip, written
):
    disk_full_after(0, match="/video", written=written)

    response = post_api(make_user(), clip)

    assert response.status_code == 507
    body = response.json()["error"]
    assert body["code"] == "storage_full"
    assert "storage space" in body["message"] and "try again later" in body["message"]
    assert response["Retry-After"].isdigit()
    assert_matches_the_document(response)
    assert media_files_left(settings) == []
    assert not Submission.objects.exists()


def test_the_upload_page_shows_a_clear_message_when_the_disk_is_full(settings, disk_full_after, clip):
    disk_full_after(0, match="/video", written=65_536)
    client = page_client(make_user())

    response = client.post(PAGE_URL, {"video": SimpleUploadedFile("a.mp4", clip), "frames": "10"})

    assert response.status_code == 507
    assert "run out of storage space" in response.content.decode()
    # The page's upload script reads the same message as JSON.
    xhr = client.post(
        PAGE_URL,
        {"video": SimpleUploadedFile("a.mp4", clip), "frames": "10"},
        headers={"x-requested-with": "XMLHttpRequest"},
    )
    assert xhr.status_code == 507
    assert "storage space" in xhr.json()["errors"]["video"][0]
    assert media_files_left(settings) == []
    assert not Submission.objects.exists()


@pytest.mark.parametrize("in_memory", [True, False], ids=["upload-in-memory", "upload-in-a-temp-file"])
def test_a_real_full_disk_gives_507_and_leaves_nothing(settings, tiny_disk, clip, in_memory):
    # An upload held in memory is streamed into the storage; a larger one arrives as a temp file
    # that Django copies across file systems in 64 KiB chunks (the 131,072-byte leftover).
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024 if in_memory else 0
    tiny_disk("64k")

    response = post_api(make_user(), clip)

    assert response.status_code == 507, response.content[:300]
    assert response.json()["error"]["code"] == "storage_full"
    assert media_files_left(settings) == []
    assert not Submission.objects.exists()


def test_a_read_only_disk_gives_503_and_a_message_on_the_page_and_in_the_api(settings, tiny_disk, clip):
    tiny_disk("1m", read_only=True)
    user = make_user()

    response = post_api(user, clip)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "storage_unavailable"
    assert_matches_the_document(response)
    page = page_client(user).post(PAGE_URL, {"video": SimpleUploadedFile("a.mp4", clip), "frames": "10"})
    assert page.status_code == 503
    assert "storage is unavailable" in page.content.decode()
    assert not Submission.objects.exists()


def test_with_room_on_the_tiny_disk_the_same_upload_is_stored(settings, tiny_disk, clip):
    # The control for the two tests above: the mount itself works; only the lack of room fails.
    tiny_disk("4m")
    response = post_api(make_user(), clip)
    assert response.status_code == 201, response.content[:300]
    assert len(media_files_left(settings)) == 1


def test_manage_py_analyze_stops_with_the_message_when_the_disk_is_full(
    settings, disk_full_after, clip, tmp_path
):
    disk_full_after(0, match="/video", written=65_536)
    make_user("batch")
    path = tmp_path / "clip.mp4"
    path.write_bytes(clip)

    with pytest.raises(CommandError, match="run out of storage space"):
        call_command("analyze", str(path), "--user", "batch")
    assert media_files_left(settings) == []
    assert not Submission.objects.exists()


def test_an_unexpected_api_error_is_json_too(monkeypatch, clip):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("detector.uploads.store_video", broken)
    client = api_client(make_user())
    client.raise_request_exception = False

    response = client.post(API_URL, {"video": SimpleUploadedFile("a.mp4", clip)})

    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "server_error"


# --- the worker -------------------------------------------------------------------------------


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
    # Not "something went wrong": the user learns it is the server's storage, and to try later.
    assert submission.error_message == media_files.job_full_message(submission)
    assert str(submission.public_id) in submission.error_message  # a reference to quote to support
    assert not Result.objects.filter(submission=submission).exists()
    assert not FrameImage.objects.filter(result__submission=submission).exists()
    # No crop at all, not even the empty one the failed write created.
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
