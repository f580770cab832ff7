"""analyze_submission in this process: stages, results on storage, claims, typed errors, retries."""

import logging
from unittest import mock

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from detector import services
from detector.models import FrameImage, Result, Submission
from detector.tasks import analyze_submission
from detector.worker import recovery
from detector.worker import runtime as worker_runtime
from detector.worker.job import AnalysisJob
from tests.detector._worker_support import (
    blank_video,
    face_video,
    install_tiny_model,
    make_user,
    stored_submission,
)
from tests.helpers.malformed import png_mov_bomb, text_file

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("in_process_worker")]

Status, Stage = Submission.Status, Submission.Stage


@pytest.fixture
def owner():
    return make_user()


def files_under(folder):
    """Every file name under a storage folder (empty folders left by the file system do not count)."""
    if not default_storage.exists(folder):
        return []
    dirs, files = default_storage.listdir(folder)
    return [f"{folder}/{f}" for f in files] + [n for d in dirs for n in files_under(f"{folder}/{d}")]


def run(submission):
    return analyze_submission.apply(args=[submission.pk]).get()


def test_it_analyses_a_video_to_done_with_crops_and_overlays_on_storage(tmp_path, owner, sent):
    detector = install_tiny_model(tmp_path)
    submission = stored_submission(owner, face_video(tmp_path), frames=10, enqueue=True)
    assert sent.call_args.kwargs["args"] == [submission.pk]

    assert run(submission) == "done"

    submission.refresh_from_db()
    assert (submission.status, submission.stage, submission.progress) == (Status.DONE, Stage.FINISHED, 100)
    assert submission.attempts == 1 and submission.claim_token == ""
    result = submission.current_result
    assert result.verdict in ("REAL", "FAKE", "UNCERTAIN")
    assert 0.0 <= result.fake_probability <= 1.0
    assert len(result.frame_probabilities) == len(result.frame_timestamps) == 10
    assert (result.model_sha256, result.detector) == (detector.sha256, detector)
    assert result.device == "cpu"
    assert result.timings["worker"]["worker_overhead"] >= 0
    # How sure the score is, and where each crop's Grad-CAM heat lies, stored for the pages.
    low, high = result.details["score_interval"]
    assert 0.0 <= low <= high <= 1.0 and result.details["interval_level"] == 0.9
    assert len(result.identities[0]["heat_in_face"]) == 10
    frames = list(result.frames.all())
    assert len(frames) == 10
    for frame in frames:
        assert default_storage.exists(frame.crop.name) and default_storage.exists(frame.overlay.name)
        assert frame.crop.name.startswith(f"submissions/{submission.public_id}/results/{result.public_id}/")
    import cv2
    import numpy as np

    with default_storage.open(frames[0].crop.name) as f:
        crop = cv2.imdecode(np.frombuffer(f.read(), np.uint8), cv2.IMREAD_COLOR)
    assert crop.shape == (112, 112, 3)  # exactly the model's input size


def test_it_records_each_stage_it_goes_through(tmp_path, owner, sent):
    install_tiny_model(tmp_path)
    submission = stored_submission(owner, face_video(tmp_path), enqueue=True)
    seen = []
    original = AnalysisJob.stage

    def spy(job, stage):
        original(job, stage)
        row = Submission.objects.get(pk=submission.pk)
        seen.append((row.stage, row.progress, row.status))

    with mock.patch.object(AnalysisJob, "stage", spy):
        run(submission)
    assert [s for s, _, _ in seen] == [Stage.FINDING_FACES, Stage.CLASSIFYING, Stage.EXPLAINING, Stage.SAVING]
    assert [p for _, p, _ in seen] == sorted(p for _, p, _ in seen)
    assert {status for _, _, status in seen} == {Status.RUNNING}


def test_a_second_delivery_of_a_finished_job_does_nothing(tmp_path, owner, sent):
    install_tiny_model(tmp_path)
    submission = stored_submission(owner, face_video(tmp_path), enqueue=True)
    assert run(submission) == "done"
    assert run(submission) == "skipped"
    assert Result.objects.filter(submission=submission).count() == 1
    submission.refresh_from_db()
    assert submission.attempts == 1


def test_it_leaves_a_job_held_by_a_live_worker_alone(tmp_path, owner, sent):
    install_tiny_model(tmp_path)
    submission = stored_submission(owner, face_video(tmp_path), enqueue=True)
    # Another host's worker holds it and heartbeated just now: we cannot prove it dead.
    Submission.objects.filter(pk=submission.pk).update(
        status=Status.RUNNING,
        claim_token="other-host|ns|123|456|abc",
        heartbeat_at=timezone.now(),
        attempts=1,
    )
    assert run(submission) == "skipped"
    submission.refresh_from_db()
    assert (submission.status, submission.attempts) == (Status.RUNNING, 1)
    assert not Result.objects.exists()


def test_it_takes_over_a_job_whose_worker_stopped_heartbeating(tmp_path, owner, sent, settings):
    install_tiny_model(tmp_path)
    submission = stored_submission(owner, face_video(tmp_path), enqueue=True)
    stale = timezone.now() - timezone.timedelta(hours=1)
    Submission.objects.filter(pk=submission.pk).update(
        status=Status.RUNNING, claim_token="other-host|ns|123|456|abc", heartbeat_at=stale, attempts=1
    )
    assert run(submission) == "done"
    submission.refresh_from_db()
    assert (submission.status, submission.attempts) == (Status.DONE, 2)


def test_it_takes_over_at_once_from_a_dead_process_on_this_host(tmp_path, owner, sent):
    import subprocess
    import sys

    from detector.worker import claims

    install_tiny_model(tmp_path)
    submission = stored_submission(owner, face_video(tmp_path), enqueue=True)
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from detector.worker import claims; print(claims.new_token())",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={"DJANGO_SETTINGS_MODULE": "deepfake_site.settings", "PATH": ""},
    )
    dead_token = child.stdout.strip()
    assert claims.process_is_gone(dead_token)
    Submission.objects.filter(pk=submission.pk).update(
        status=Status.RUNNING, claim_token=dead_token, heartbeat_at=timezone.now(), attempts=1
    )
    assert run(submission) == "done"


def test_a_job_that_keeps_killing_its_worker_ends_failed(tmp_path, owner, sent, settings):
    settings.DETECTOR_MAX_ATTEMPTS = 2
    install_tiny_model(tmp_path)
    submission = stored_submission(owner, face_video(tmp_path), enqueue=True)
    stale = timezone.now() - timezone.timedelta(hours=1)
    Submission.objects.filter(pk=submission.pk).update(
        status=Status.RUNNING, claim_token="gone|ns|1|2|x", heartbeat_at=stale, attempts=2
    )
    assert run(submission) == "skipped"
    submission.refresh_from_db()
    assert submission.status == Status.FAILED
    assert "2 times" in submission.error_message
    assert not Result.objects.exists()


@pytest.mark.parametrize(
    ("make_file", "error_code"),
    [
        (lambda tmp: text_file(tmp / "notes.mp4"), "NotAVideo"),
        (lambda tmp: blank_video(tmp), "NoFaceFound"),
    ],
    ids=["not-a-video", "no-face"],
)
def test_each_typed_ml_core_error_ends_failed_with_its_message(tmp_path, owner, sent, make_file, error_code):
    from ml_core import errors

    install_tiny_model(tmp_path)
    submission = stored_submission(owner, make_file(tmp_path), enqueue=True)
    assert run(submission) == "failed"
    submission.refresh_from_db()
    assert submission.status == Status.FAILED
    assert submission.error_message == getattr(errors, error_code).user_message
    assert not Result.objects.exists() and not FrameImage.objects.exists()


def test_a_video_over_the_duration_limit_is_told_its_length_and_the_limit(tmp_path, owner, sent, settings):
    # The limit can be lowered after an upload was accepted: the job says by how much it is over.
    install_tiny_model(tmp_path)
    submission = stored_submission(owner, face_video(tmp_path, count=40), enqueue=True)  # 4 s at 10 fps
    settings.UPLOAD_MAX_SECONDS = 2
    with mock.patch.object(worker_runtime, "get_predictor", side_effect=AssertionError("model loaded")):
        assert run(submission) == "failed"
    submission.refresh_from_db()
    assert submission.error_message.startswith("This video is 4 seconds long; the limit is 2 seconds.")
    assert not Result.objects.exists()


def test_frames_larger_than_4k_fail_the_job_before_the_model_is_loaded(tmp_path, owner, sent):
    install_tiny_model(tmp_path)
    submission = stored_submission(owner, png_mov_bomb(tmp_path / "bomb.mov"), enqueue=True)
    with mock.patch.object(worker_runtime, "get_predictor", side_effect=AssertionError("model loaded")):
        assert run(submission) == "failed"
    submission.refresh_from_db()
    assert "larger than 3840×2160 (4K)" in submission.error_message
    assert not Result.objects.exists() and not FrameImage.objects.exists()


def test_an_unexpected_error_is_logged_with_a_traceback_and_shown_generically(tmp_path, owner, sent, caplog):
    install_tiny_model(tmp_path)
    submission = stored_submission(owner, face_video(tmp_path), enqueue=True)
    with (
        mock.patch(
            "ml_core.inference.analysis.extract_faces", side_effect=ZeroDivisionError("secret internals")
        ),
        caplog.at_level(logging.ERROR, logger="detector.tasks"),
    ):
        assert run(submission) == "failed"
    submission.refresh_from_db()
    assert submission.status == Status.FAILED
    assert str(submission.public_id) in submission.error_message
    assert "secret internals" not in submission.error_message
    record = next(r for r in caplog.records if r.name == "detector.tasks" and r.exc_info)
    assert record.exc_info[0] is ZeroDivisionError


def test_a_failure_while_saving_images_leaves_no_files_behind(tmp_path, owner, sent):
    install_tiny_model(tmp_path)
    submission = stored_submission(owner, face_video(tmp_path), enqueue=True)

    def explode(*args, **kwargs):
        raise OSError(28, "No space left on device")

    with mock.patch.object(FrameImage.objects, "bulk_create", side_effect=explode):
        assert run(submission) == "failed"
    assert files_under(f"submissions/{submission.public_id}") == [submission.video.name]
    assert not Result.objects.exists()


def test_a_transient_error_gives_the_claim_back_and_schedules_a_retry(tmp_path, owner, sent):
    from django.db import OperationalError

    install_tiny_model(tmp_path)
    submission = stored_submission(owner, face_video(tmp_path), enqueue=True)
    with (
        mock.patch(
            "ml_core.inference.analysis.extract_faces", side_effect=OperationalError("database is restarting")
        ),
        mock.patch.object(analyze_submission, "retry", side_effect=RuntimeError("retry requested")) as retry,
        pytest.raises(RuntimeError, match="retry requested"),
    ):
        analyze_submission.apply(args=[submission.pk], throw=True).get()
    assert retry.call_args.kwargs["countdown"] > 0
    submission.refresh_from_db()
    assert (submission.status, submission.stage, submission.claim_token) == (Status.QUEUED, Stage.WAITING, "")


def test_a_worker_that_lost_its_claim_saves_nothing(tmp_path, owner, sent):
    install_tiny_model(tmp_path)
    submission = stored_submission(owner, face_video(tmp_path), enqueue=True)
    original = AnalysisJob.stage

    def taken_over(job, stage):
        if stage == Stage.SAVING:  # meanwhile requeue_stuck judged us dead and another worker claimed it
            Submission.objects.filter(pk=submission.pk).update(claim_token="someone-else")
        original(job, stage)

    with mock.patch.object(AnalysisJob, "stage", taken_over):
        assert run(submission) == "lost"
    assert not Result.objects.exists()


def test_a_submission_deleted_while_running_leaves_no_result_files(tmp_path, owner, sent):
    install_tiny_model(tmp_path)
    submission = stored_submission(owner, face_video(tmp_path), enqueue=True)
    original = AnalysisJob.save_result

    def delete_first(job, *args):
        Submission.objects.filter(pk=submission.pk).delete()
        return original(job, *args)

    with mock.patch.object(AnalysisJob, "save_result", delete_first):
        assert run(submission) == "lost"
    assert files_under(f"submissions/{submission.public_id}/results") == []


def test_without_a_model_uploads_wait_and_start_when_one_is_installed(tmp_path, owner, sent):
    submission = stored_submission(owner, face_video(tmp_path), enqueue=True)
    submission.refresh_from_db()
    assert (submission.status, submission.stage) == (Status.QUEUED, Stage.WAITING_MODEL)
    assert not sent.called
    assert recovery.requeue_stuck()["waiting_model"] == 0 and not sent.called

    install_tiny_model(tmp_path, activate=True)

    submission.refresh_from_db()
    assert (submission.status, submission.stage) == (Status.QUEUED, Stage.WAITING)
    assert sent.call_args.kwargs["args"] == [submission.pk]
    assert run(submission) == "done"


def test_a_job_delivered_when_no_model_is_active_goes_back_to_waiting(tmp_path, owner, sent):
    from detector.registry import deactivate_detector

    detector = install_tiny_model(tmp_path)
    submission = stored_submission(owner, face_video(tmp_path), enqueue=True)
    deactivate_detector(detector)
    assert run(submission) == "skipped"
    submission.refresh_from_db()
    assert (submission.status, submission.stage, submission.attempts) == (
        Status.QUEUED,
        Stage.WAITING_MODEL,
        0,
    )


def test_the_worker_reloads_when_the_active_model_changes(tmp_path, owner, sent):
    from detector.registry import activate_detector

    first = install_tiny_model(tmp_path, seed=0)
    second = install_tiny_model(tmp_path, seed=1, activate=False)
    one = stored_submission(owner, face_video(tmp_path), enqueue=True)
    run(one)
    assert worker_runtime.loaded_sha256() == first.sha256
    activate_detector(second)
    two = stored_submission(owner, face_video(tmp_path), enqueue=True)
    run(two)
    two.refresh_from_db()
    assert worker_runtime.loaded_sha256() == second.sha256
    assert two.current_result.model_sha256 == second.sha256


def test_the_local_model_cache_is_keyed_by_sha256_and_verified(tmp_path, owner, settings):
    from ml_core.errors import CheckpointError

    detector = install_tiny_model(tmp_path)
    path = worker_runtime.local_checkpoint(detector)
    assert path.parent.name == detector.sha256 and path.is_file()
    path.unlink()
    with default_storage.open(detector.checkpoint.name, "wb") as f:  # the store was corrupted
        f.write(b"not the same bytes")
    with pytest.raises(CheckpointError, match="SHA-256"):
        worker_runtime.local_checkpoint(detector)
    assert not any(p.is_file() for p in path.parent.iterdir())


def test_a_rerun_keeps_the_earlier_result_as_history(tmp_path, owner, sent):
    install_tiny_model(tmp_path)
    submission = stored_submission(owner, face_video(tmp_path), enqueue=True)
    run(submission)
    submission.refresh_from_db()
    first = submission.current_result
    services.rerun_analysis(submission)
    assert Submission.objects.get(pk=submission.pk).status == Status.QUEUED
    run(submission)
    submission.refresh_from_db()
    assert submission.results.count() == 2 and submission.current_result != first


@pytest.mark.parametrize(("setting", "expected"), [("", "fast"), ("exact", "exact")])
def test_face_boxes_follow_the_checkpoint_unless_the_worker_setting_forces_them(
    tmp_path, owner, sent, settings, setting, expected
):
    settings.DETECTOR_FACE_BOXES = setting
    install_tiny_model(tmp_path)  # our own training's config: fast boxes
    submission = stored_submission(owner, face_video(tmp_path), frames=10, enqueue=True)
    assert run(submission) == "done"
    submission.refresh_from_db()
    assert submission.current_result.details["face_boxes"] == expected


def test_the_worker_makes_the_crops_the_model_was_trained_on_unless_a_setting_overrides(
    tmp_path, owner, sent, settings
):
    # A model trained on HOG-only crops without equalisation: its recipe, not a global default.
    install_tiny_model(tmp_path, face_detector="hog", contrast="off")
    first = stored_submission(owner, face_video(tmp_path), frames=10, enqueue=True)
    assert run(first) == "done"
    first.refresh_from_db()
    details = first.current_result.details
    assert (details["face_detector"], details["contrast"]) == ("hog", "off")
    assert details["crop_recipe_overrides"] == {}
    settings.DETECTOR_FACE_DETECTOR = "hog+mtcnn"  # an operator's explicit choice, recorded
    second = stored_submission(owner, face_video(tmp_path), frames=10, enqueue=True)
    assert run(second) == "done"
    second.refresh_from_db()
    details = second.current_result.details
    assert details["face_detector"] == "hog+mtcnn"
    assert details["crop_recipe_overrides"] == {"detector": "hog+mtcnn"}


@pytest.mark.parametrize(("boxes", "expected"), [("", "hog+mtcnn"), ("exact", "hog")])
def test_the_worker_uses_the_face_detector_setting_and_records_it_but_exact_boxes_keep_hog(
    tmp_path, owner, sent, settings, boxes, expected
):
    settings.DETECTOR_FACE_BOXES = boxes
    settings.DETECTOR_FACE_DETECTOR = "hog+mtcnn"
    install_tiny_model(tmp_path)
    submission = stored_submission(owner, face_video(tmp_path), frames=10, enqueue=True)
    assert run(submission) == "done"
    submission.refresh_from_db()
    details = submission.current_result.details
    assert details["face_detector"] == expected
    assert details["main_face_from_mtcnn"] == 0  # a bright, frontal face: HOG finds it every time


def test_django_start_up_registers_the_analysis_task_that_services_sends_by_name():
    import subprocess
    import sys

    code = (
        "import django; django.setup(); from celery import current_app; from detector import services; "
        "print(services.ANALYZE_TASK in current_app.tasks)"
    )
    child = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"DJANGO_SETTINGS_MODULE": "deepfake_site.settings", "PATH": ""},
    )
    assert child.stdout.strip() == "True"
