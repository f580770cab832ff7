"""uploads.store_video: one checked path into storage for the page, the API and `manage.py analyze`."""

from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from detector.models import Submission
from tests.detector._worker_support import face_video, make_user
from tests.helpers.malformed import text_file

pytestmark = pytest.mark.django_db


@pytest.fixture
def batch_user():
    return make_user("batch")


def stored_files(settings):
    return sorted(p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file())


def analyze(*paths):
    call_command("analyze", *map(str, paths), "--user", "batch", "--frames", "10")


def test_analyze_refuses_an_oversize_file_and_stores_nothing(tmp_path, settings, batch_user, sent):
    video = face_video(tmp_path)
    settings.UPLOAD_MAX_BYTES = video.stat().st_size - 1
    with pytest.raises(CommandError, match=r"face\.mp4: This file is .*the limit is"):
        analyze(video)
    assert not Submission.objects.exists() and stored_files(settings) == []
    assert not sent.called


def test_analyze_refuses_a_text_file_named_mp4(tmp_path, settings, batch_user, sent):
    fake = text_file(tmp_path / "notes.mp4")
    with pytest.raises(CommandError, match=r"notes\.mp4: "):
        analyze(fake)
    assert not Submission.objects.exists() and stored_files(settings) == []


def test_analyze_refuses_a_video_over_the_duration_limit(tmp_path, settings, batch_user, sent):
    video = face_video(tmp_path, count=30)  # 3 s at 10 fps
    settings.UPLOAD_MAX_SECONDS = 1
    with pytest.raises(CommandError, match=r"face\.mp4: This video is 3 s long; the limit is 1 s"):
        analyze(video)
    assert not Submission.objects.exists() and stored_files(settings) == []


def test_analyze_stores_the_good_clips_of_a_folder_and_names_the_bad_one(
    tmp_path, settings, batch_user, sent
):
    folder = tmp_path / "clips"
    folder.mkdir()
    face_video(folder, "one.mp4")
    text_file(folder / "broken.mp4")
    face_video(folder, "two.mov")
    with pytest.raises(CommandError, match=r"refused 1 of 3 videos(.|\n)*broken\.mp4: "):
        analyze(folder)
    assert sorted(Submission.objects.values_list("original_name", flat=True)) == ["one.mp4", "two.mov"]
    assert len(stored_files(settings)) == 2
    assert (
        sorted(c.kwargs["args"][0] for c in sent.call_args_list)
        == sorted(Submission.objects.values_list("pk", flat=True))
        or not sent.called
    )  # no model installed: they wait for one


def test_analyze_copies_the_users_file(tmp_path, settings, batch_user, sent):
    video = face_video(tmp_path)
    before = video.read_bytes()
    analyze(video)
    submission = Submission.objects.get()
    assert video.read_bytes() == before
    with submission.video.open("rb") as stored:
        assert stored.read() == before
    assert submission.size_bytes == len(before) and submission.duration_seconds == pytest.approx(
        2.0, abs=0.2
    )  # 20 frames at 10 fps


def test_store_video_refuses_before_storing_anything(tmp_path, settings, sent):
    from detector import uploads

    owner = make_user()
    with pytest.raises(ValidationError) as refused:
        uploads.store_video(owner, text_file(tmp_path / "clip.mp4"), frames=10)
    assert refused.value.code
    assert not Submission.objects.exists() and stored_files(settings) == []


def test_store_video_saves_and_enqueues_a_good_video(tmp_path, settings, sent):
    from detector import uploads

    owner = make_user()
    submission = uploads.store_video(owner, face_video(tmp_path, name="Holiday.MP4"), frames=20)
    submission.refresh_from_db()
    assert (submission.owner, submission.original_name, submission.frames_requested) == (
        owner,
        "Holiday.MP4",
        20,
    )
    assert submission.video.name.endswith("/video.mp4")
    assert submission.status == Submission.Status.QUEUED
