"""Management commands (install_detector, requeue_stuck, analyze, purge_media) and their services."""

import json
from datetime import timedelta
from io import StringIO
from unittest import mock

import pytest
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.utils import timezone

from detector import services
from detector.models import DetectorModel, FrameImage, Result, Submission
from detector.tasks import analyze_submission
from detector.worker import recovery
from ml_core.model.checkpoints import file_sha256
from ml_core.model.names import default_model_name
from tests.detector._worker_support import face_video, install_tiny_model, make_user, stored_submission
from tests.helpers.checkpoints import make_tiny_checkpoint

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("in_process_worker")]

Status, Stage = Submission.Status, Submission.Stage


@pytest.fixture
def inline_worker():
    """Run each job in this process the moment it is sent."""

    def run_now(args, **kwargs):
        analyze_submission.apply(args=args)

    with (
        mock.patch.object(analyze_submission, "apply_async", side_effect=run_now),
        mock.patch("detector.services.dispatch_on_commit", side_effect=services.dispatch),
    ):
        yield


def output_of(*args):
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_install_detector_registers_and_activates_a_checkpoint(tmp_path):
    path = make_tiny_checkpoint(tmp_path / "model.pt")
    text = output_of("install_detector", str(path), "--activate")
    detector = DetectorModel.objects.get()
    assert detector.sha256 in text and detector.is_active
    assert default_storage.exists(f"detectors/{detector.sha256}.pt")


def write_test_metrics(checkpoint, sha256=None):
    """A metrics.json beside `checkpoint` with two real and three fake test videos."""
    scores = [{"label": "REAL", "p_fake": p} for p in (0.61234567, 0.1)]
    scores += [{"label": "FAKE", "p_fake": p} for p in (0.95, 0.3, 0.7)]
    metrics = {"test": {"threshold": 0.6, "video": {"auc": 0.8333}, "scores": scores}}
    if sha256:
        metrics["sha256"] = sha256
    (checkpoint.parent / "metrics.json").write_text(json.dumps(metrics))


def test_install_detector_stores_the_test_scores_from_a_metrics_json_beside_the_file(tmp_path):
    path = make_tiny_checkpoint(tmp_path / "model.pt")
    write_test_metrics(path, sha256=file_sha256(path))
    text = output_of("install_detector", str(path))
    record = DetectorModel.objects.get().metrics["test_scores"]
    assert record == {
        "version": 2,
        "reals": [0.1, 0.6123],
        "fakes": [0.3, 0.7, 0.95],
        "count": 5,
        "auc": 0.8333,
        "threshold": 0.6,
    }
    assert "2 real and 3 fake test videos, AUC 0.833, threshold 0.600" in text
    assert "0.6123" not in text  # the scores themselves stay out of the summary


def test_install_detector_default_stores_the_test_scores_too(tmp_path, settings):
    path = make_tiny_checkpoint(tmp_path / "shipped.pt")
    write_test_metrics(path)
    settings.DETECTOR_DEFAULT_CHECKPOINT = str(path)
    output_of("install_detector", "--default")
    assert DetectorModel.objects.get(is_active=True).metrics["test_scores"]["count"] == 5


def test_install_detector_default_records_the_shipped_models_test_figures(settings):
    # What `make run` does on a fresh clone: the result page can then put scores in context.
    from ml_core.constants import DEFAULT_CHECKPOINT

    settings.DETECTOR_DEFAULT_CHECKPOINT = str(DEFAULT_CHECKPOINT)
    output_of("install_detector", "--default")
    metrics = json.loads(DEFAULT_CHECKPOINT.with_name("metrics.json").read_text())
    record = DetectorModel.objects.get(is_active=True).metrics["test_scores"]
    assert len(record["reals"]) == metrics["test"]["video"]["reals"]
    assert len(record["fakes"]) == metrics["test"]["video"]["fakes"]
    assert record["threshold"] == metrics["test"]["threshold"]


def test_installing_a_registered_file_again_backfills_its_missing_test_scores(tmp_path):
    # A database made before test figures were recorded: the row exists without them.
    path = make_tiny_checkpoint(tmp_path / "model.pt")
    output_of("install_detector", str(path))
    assert "test_scores" not in DetectorModel.objects.get().metrics
    write_test_metrics(path, sha256=file_sha256(path))
    output_of("install_detector", str(path))
    detector = DetectorModel.objects.get()
    assert detector.metrics["test_scores"]["count"] == 5
    assert detector.metrics["kind"]  # the rest of the record is kept


def test_installing_again_replaces_test_scores_recorded_in_an_older_form(tmp_path):
    # Recorded before the model page's figures existed: no version, no per-method figures.
    path = make_tiny_checkpoint(tmp_path / "model.pt")
    output_of("install_detector", str(path))
    detector = DetectorModel.objects.get()
    detector.metrics = {**detector.metrics, "test_scores": {"reals": [0.1], "fakes": [0.9], "threshold": 0.5}}
    detector.save()
    write_test_metrics(path, sha256=file_sha256(path))
    output_of("install_detector", str(path))
    record = DetectorModel.objects.get().metrics["test_scores"]
    assert record["version"] == 2 and record["count"] == 5
    output_of("install_detector", str(path))  # a current record is left as it is
    assert DetectorModel.objects.get().metrics["test_scores"] == record


def test_install_detector_default_backfills_the_test_scores_of_the_active_shipped_model(tmp_path, settings):
    # Every `make run` calls install_detector --default: an older database catches up.
    path = make_tiny_checkpoint(tmp_path / "shipped.pt")
    settings.DETECTOR_DEFAULT_CHECKPOINT = str(path)
    output_of("install_detector", "--default")
    assert "test_scores" not in DetectorModel.objects.get(is_active=True).metrics
    write_test_metrics(path)
    text = output_of("install_detector", "--default")
    assert "added its test figures" in text
    assert DetectorModel.objects.get(is_active=True).metrics["test_scores"]["count"] == 5
    assert DetectorModel.objects.count() == 1


def test_install_detector_default_leaves_another_active_models_figures_alone(tmp_path, settings):
    chosen = make_tiny_checkpoint(tmp_path / "chosen.pt", seed=1)
    output_of("install_detector", str(chosen), "--activate")
    shipped = make_tiny_checkpoint(tmp_path / "shipped" / "shipped.pt", seed=2)
    write_test_metrics(shipped)
    settings.DETECTOR_DEFAULT_CHECKPOINT = str(shipped)
    output_of("install_detector", "--default")
    assert "test_scores" not in DetectorModel.objects.get(is_active=True).metrics


def test_install_detector_ignores_a_metrics_json_of_another_checkpoint(tmp_path):
    path = make_tiny_checkpoint(tmp_path / "model.pt")
    write_test_metrics(path, sha256="00" * 32)
    text = output_of("install_detector", str(path))
    assert "test_scores" not in DetectorModel.objects.get().metrics
    assert "test figures:    none" in text


def test_install_detector_reports_a_bad_file_as_a_command_error(tmp_path):
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"")
    with pytest.raises(CommandError, match="empty"):
        call_command("install_detector", str(bad))
    assert not DetectorModel.objects.exists()


def test_install_detector_default_installs_and_activates_the_shipped_model(tmp_path, settings):
    settings.DETECTOR_DEFAULT_CHECKPOINT = str(make_tiny_checkpoint(tmp_path / "shipped.pt"))
    text = output_of("install_detector", "--default")
    active = DetectorModel.objects.get(is_active=True)
    assert "installed and activated the default detector" in text
    assert active.notes == "shipped default"
    assert active.name == default_model_name(settings.DETECTOR_DEFAULT_CHECKPOINT)  # as the CLI names it
    # Run again (every `make run` does): nothing new, the same model stays active.
    output_of("install_detector", "--default")
    assert DetectorModel.objects.count() == 1


def test_install_detector_default_never_replaces_the_operators_choice(tmp_path, settings):
    chosen = make_tiny_checkpoint(tmp_path / "chosen.pt", seed=1)
    output_of("install_detector", str(chosen), "--activate")
    first = DetectorModel.objects.get()
    settings.DETECTOR_DEFAULT_CHECKPOINT = str(make_tiny_checkpoint(tmp_path / "shipped.pt", seed=2))
    text = output_of("install_detector", "--default")
    assert "is not installed over it" in text
    assert DetectorModel.objects.count() == 1
    assert DetectorModel.objects.get(is_active=True).pk == first.pk


def test_install_detector_default_explains_a_missing_file_and_an_empty_setting(tmp_path, settings):
    settings.DETECTOR_DEFAULT_CHECKPOINT = str(tmp_path / "absent.pt")
    with pytest.raises(CommandError, match="absent.pt does not exist"):
        call_command("install_detector", "--default")
    settings.DETECTOR_DEFAULT_CHECKPOINT = ""
    assert "no default detector configured" in output_of("install_detector", "--default")
    assert not DetectorModel.objects.exists()


def test_requeue_stuck_resends_jobs_that_never_reached_the_broker(tmp_path, sent):
    install_tiny_model(tmp_path)
    submission = stored_submission(make_user(), face_video(tmp_path))
    with mock.patch.object(analyze_submission, "apply_async", side_effect=ConnectionRefusedError("down")):
        services.enqueue_analysis(submission)  # the broker is down: no exception
    submission.refresh_from_db()
    assert submission.status == Status.QUEUED and submission.dispatched_at is None

    assert "1 never sent" in output_of("requeue_stuck")
    assert sent.call_args.kwargs["args"] == [submission.pk]
    assert Submission.objects.get(pk=submission.pk).dispatched_at is not None
    sent.reset_mock()
    assert "re-enqueued 0" in output_of("requeue_stuck")
    assert not sent.called


def test_requeue_stuck_resends_jobs_queued_for_too_long_and_frees_dead_workers_jobs(tmp_path, sent):
    install_tiny_model(tmp_path)
    owner = make_user()
    old = timezone.now() - timedelta(hours=2)
    lost = stored_submission(owner, face_video(tmp_path), enqueue=True)
    Submission.objects.filter(pk=lost.pk).update(dispatched_at=old)
    dead = stored_submission(owner, face_video(tmp_path), enqueue=True)
    Submission.objects.filter(pk=dead.pk).update(
        status=Status.RUNNING, claim_token="elsewhere|ns|1|2|x", heartbeat_at=old, attempts=1
    )
    busy = stored_submission(owner, face_video(tmp_path), enqueue=True)
    Submission.objects.filter(pk=busy.pk).update(
        status=Status.RUNNING, claim_token="elsewhere|ns|1|2|y", heartbeat_at=timezone.now(), attempts=1
    )
    sent.reset_mock()

    counts = recovery.requeue_stuck()

    assert (counts["stale_queued"], counts["dead_worker"]) == (1, 1)
    assert sorted(c.kwargs["args"][0] for c in sent.call_args_list) == sorted([lost.pk, dead.pk])
    assert Submission.objects.get(pk=dead.pk).status == Status.QUEUED
    assert Submission.objects.get(pk=busy.pk).status == Status.RUNNING


def test_requeue_stuck_resends_a_queued_job_past_its_lease_only_when_the_broker_queue_is_empty(
    tmp_path, sent, settings
):
    settings.QUEUED_RESEND_SECONDS = 120
    install_tiny_model(tmp_path)
    owner = make_user()
    lost = stored_submission(owner, face_video(tmp_path), enqueue=True)
    stored_submission(owner, face_video(tmp_path), enqueue=True)  # sent just now: within its lease
    three_minutes_ago = timezone.now() - timedelta(minutes=3)
    Submission.objects.filter(pk=lost.pk).update(
        dispatched_at=three_minutes_ago, updated_at=three_minutes_ago
    )
    sent.reset_mock()

    for waiting in (1, None):  # its message still waits, or the broker cannot tell: left alone
        with mock.patch.object(recovery, "jobs_waiting_in_broker", return_value=waiting):
            assert recovery.requeue_stuck()["lost_queued"] == 0
    assert not sent.called

    with mock.patch.object(recovery, "jobs_waiting_in_broker", return_value=0):
        assert "1 whose message the broker lost" in output_of("requeue_stuck")
    assert [c.kwargs["args"] for c in sent.call_args_list] == [[lost.pk]]  # not the recent one
    assert Submission.objects.get(pk=lost.pk).dispatched_at > three_minutes_ago


def test_requeue_stuck_gives_up_on_a_job_that_used_all_its_attempts(tmp_path, sent, settings):
    settings.DETECTOR_MAX_ATTEMPTS = 3
    install_tiny_model(tmp_path)
    submission = stored_submission(make_user(), face_video(tmp_path), enqueue=True)
    Submission.objects.filter(pk=submission.pk).update(
        status=Status.RUNNING, claim_token="x|ns|1|2|z", heartbeat_at=None, attempts=3
    )
    assert recovery.requeue_stuck()["gave_up"] == 1
    submission.refresh_from_db()
    assert submission.status == Status.FAILED and "3 times" in submission.error_message


def test_analyze_submits_a_folder_of_clips_and_prints_each_verdict(tmp_path, inline_worker):
    install_tiny_model(tmp_path)
    make_user("batch")
    folder = tmp_path / "clips"
    folder.mkdir()
    face_video(folder, "one.mp4")
    face_video(folder, "two.MOV")
    (folder / "notes.txt").write_text("not a clip")

    text = output_of("analyze", str(folder), "--user", "batch", "--frames", "10", "--wait", "--timeout", "60")

    rows = Submission.objects.order_by("original_name")
    assert [s.original_name for s in rows] == ["one.mp4", "two.MOV"]
    assert all(s.status == Status.DONE and s.frames_requested == 10 for s in rows)
    assert rows[1].video.name.endswith("/video.mov")
    for submission in rows:
        assert f"{submission.current_result.verdict}" in text and str(submission.public_id) in text


def test_analyze_refuses_an_unknown_user(tmp_path):
    with pytest.raises(CommandError, match="no user"):
        call_command("analyze", str(face_video(tmp_path)), "--user", "nobody")


def test_purge_media_removes_old_files_but_keeps_the_verdicts(tmp_path, inline_worker):
    install_tiny_model(tmp_path)
    owner = make_user()
    old = stored_submission(owner, face_video(tmp_path), enqueue=True)
    new = stored_submission(owner, face_video(tmp_path), enqueue=True)
    Submission.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=40))
    old_files = services.submission_file_names(old)
    assert len(old_files) > 1 and all(default_storage.exists(n) for n in old_files)

    assert "purged 1 submissions" in output_of("purge_media", "--older-than", "30")

    old.refresh_from_db()
    assert not any(default_storage.exists(n) for n in old_files)
    assert old.media_purged_at is not None and not old.video
    assert old.current_result.verdict and old.current_result.frames.count() == 10
    assert not FrameImage.objects.filter(result__submission=old).exclude(crop="").exists()
    assert all(default_storage.exists(n) for n in services.submission_file_names(new))
    with pytest.raises(ValueError, match="removed"):
        services.rerun_analysis(old)


def test_delete_submission_removes_its_rows_and_files(
    tmp_path, inline_worker, django_capture_on_commit_callbacks
):
    install_tiny_model(tmp_path)
    submission = stored_submission(make_user(), face_video(tmp_path), enqueue=True)
    names = services.submission_file_names(submission)
    with django_capture_on_commit_callbacks(execute=True):
        services.delete_submission(submission)
    assert not Submission.objects.exists() and not Result.objects.exists()
    assert not any(default_storage.exists(n) for n in names)


def test_queue_position_counts_from_the_oldest_queued_submission(tmp_path, sent):
    install_tiny_model(tmp_path)
    owner = make_user()
    first, second, third = (stored_submission(owner, face_video(tmp_path), enqueue=True) for _ in range(3))
    Submission.objects.filter(pk=first.pk).update(status=Status.RUNNING)
    for s in (first, second, third):
        s.refresh_from_db()
    assert [services.queue_position(s) for s in (first, second, third)] == [None, 1, 2]
