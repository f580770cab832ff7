"""manage.py sweep_media (and beat's sweep_media task): files under the submissions' folders that
no row references go once older than the grace period; everything a row references stays."""

import os
import time
import uuid
from io import StringIO

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command

from detector.tasks import sweep_media
from tests.helpers.web import make_result, make_submission, make_user

pytestmark = pytest.mark.django_db

HOUR = 3600


def put(name, age_seconds):
    """A file in media storage, last written `age_seconds` ago."""
    name = default_storage.save(name, ContentFile(b"face"))
    then = time.time() - age_seconds
    os.utime(default_storage.path(name), (then, then))
    return name


def sweep(*args):
    out = StringIO()
    call_command("sweep_media", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def media(settings):
    """A finished submission with its images, and the leftovers a crash could leave around it."""
    settings.MEDIA_ORPHAN_GRACE_SECONDS = 2 * HOUR
    submission = make_submission(make_user())
    make_result(submission)
    folder = f"submissions/{submission.public_id}"
    kept = sorted(n for n in _all_files() if n.startswith(folder))
    orphans = [
        put(f"{folder}/results/{uuid.uuid4()}/i0_000_f0_crop.png", 3 * HOUR),  # attempt killed while saving
        put(f"submissions/{uuid.uuid4()}/video.mp4", 3 * HOUR),  # an upload whose row was never saved
        put("submissions/not-a-uuid/x.png", 3 * HOUR),  # not a folder we made
    ]
    young = put(f"{folder}/results/{uuid.uuid4()}/i0_000_f0_crop.png", 60)  # a running job's, maybe
    detector_file = put("detectors/" + "cd" * 32 + ".pt", 3 * HOUR)  # not a submission's file
    return {"kept": kept + [young, detector_file], "orphans": orphans}


def _all_files():
    root = default_storage.path("")
    return [os.path.relpath(os.path.join(d, f), root) for d, _, files in os.walk(root) for f in files]


def test_it_removes_old_unreferenced_files_and_reports_them(media):
    report = sweep()

    assert "deleted 3 unreferenced files older than 7200 seconds" in report
    assert all(name in report for name in media["orphans"])
    assert sorted(_all_files()) == sorted(media["kept"])


def test_a_dry_run_lists_the_files_but_keeps_them(media):
    report = sweep("--dry-run")

    assert "would delete 3 unreferenced files" in report
    assert all(default_storage.exists(name) for name in media["orphans"] + media["kept"])


def test_a_shorter_grace_period_takes_younger_files_too(media):
    assert "deleted 4 unreferenced files" in sweep("--grace-seconds", "30")
    assert not any(default_storage.exists(name) for name in media["orphans"])


def test_it_refuses_a_negative_grace_period():
    with pytest.raises(CommandError, match="0 or more"):
        call_command("sweep_media", "--grace-seconds", "-1")


def test_it_does_nothing_before_any_upload():
    assert "deleted 0 unreferenced files" in sweep()


def test_beat_runs_the_sweep_every_hour(settings, media):
    schedule = {entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert schedule["detector.tasks.sweep_media"] == HOUR
    assert sweep_media.apply().get() == 3
    assert not any(default_storage.exists(name) for name in media["orphans"])
