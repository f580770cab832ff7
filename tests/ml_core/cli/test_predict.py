import json
import subprocess
import sys
from pathlib import Path

import pytest

from ml_core.cli import predict
from ml_core.cli.predict import main
from ml_core.constants import DEFAULT_CHECKPOINT, DEFAULT_FRAMES
from ml_core.model.checkpoints import file_sha256
from tests.helpers.checkpoints import make_tiny_checkpoint
from tests.helpers.videos import make_face_video


@pytest.fixture
def video(tmp_path):
    return make_face_video(tmp_path / "face.mp4", count=20)


@pytest.fixture
def checkpoint(tmp_path):
    return make_tiny_checkpoint(tmp_path / "tiny.pt", sequence_length=10, verdict="FAKE")


def test_it_prints_the_verdict(video, checkpoint, capsys):
    assert main([str(video), "--checkpoint", str(checkpoint)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("FAKE")
    assert file_sha256(checkpoint) in out
    assert "identity 0 (main face, 20 frames)" in out


def test_it_keeps_the_uncertain_rule_off_the_verdict_line(video, checkpoint, capsys):
    assert main([str(video), "--checkpoint", str(checkpoint)]) == 0
    verdict_line, rule_line = capsys.readouterr().out.splitlines()[:2]
    assert verdict_line.startswith("FAKE: ") and "% probability of being fake" in verdict_line
    assert "UNCERTAIN" not in verdict_line
    assert "UNCERTAIN between" in rule_line


def test_it_gives_the_likely_range_and_says_how_the_score_is_made(video, checkpoint, capsys):
    from ml_core.inference.score import SCORE_DEFINITION

    assert main([str(video), "--checkpoint", str(checkpoint)]) == 0
    verdict_line, rule_line, definition_line = capsys.readouterr().out.splitlines()[:3]
    assert ", likely range " in verdict_line and verdict_line.endswith("%")
    assert "UNCERTAIN too when the likely range reaches both sides" in rule_line
    assert definition_line == f"  the score: {SCORE_DEFINITION}"
    assert main([str(video), "--checkpoint", str(checkpoint), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["score_definition"] == SCORE_DEFINITION
    low, high = data["score_interval"]
    assert low - 1e-5 <= data["fake_probability"] <= high + 1e-5  # stored to 6 places


def test_it_samples_as_many_frames_as_the_web_app_by_default(video, checkpoint, capsys):
    # The checkpoint was trained on 10-frame sequences; the default is still the app's.
    assert main([str(video), "--checkpoint", str(checkpoint), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["extraction"]["config"]["frames"] == DEFAULT_FRAMES == 20


def test_it_prints_everything_as_json(video, checkpoint, capsys):
    assert main([str(video), "--checkpoint", str(checkpoint), "--frames", "12", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["label"] == "FAKE" and data["model_sha256"] == file_sha256(checkpoint)
    assert data["extraction"]["config"]["frames"] == 12
    assert len(data["frame_probabilities"]) == len(data["frame_indices"]) > 0
    assert data["device"] == "cpu"


def test_it_writes_grad_cam_overlays(video, checkpoint, tmp_path, capsys):
    out_dir = tmp_path / "cams"
    assert main([str(video), "--checkpoint", str(checkpoint), "--explain", str(out_dir)]) == 0
    files = sorted(out_dir.glob("identity0_frame*.png"))
    assert len(files) == 20
    assert "wrote 20 Grad-CAM overlays" in capsys.readouterr().out


def test_it_explains_a_bad_checkpoint(video, tmp_path, capsys):
    page = tmp_path / "model_87_acc_20_frames_final_data.pt"
    page.write_text("<html><body>Quota exceeded</body></html>")
    assert main([str(video), "--checkpoint", str(page)]) == 2
    assert "HTML page" in capsys.readouterr().err


def test_it_explains_a_file_that_is_not_a_video(checkpoint, tmp_path, capsys):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all")
    assert main([str(text), "--checkpoint", str(checkpoint)]) == 2
    assert "not a readable video" in capsys.readouterr().err


def test_it_runs_the_shipped_model_without_a_checkpoint_under_the_web_apps_name(
    video, tmp_path, capsys, monkeypatch
):
    shipped = make_tiny_checkpoint(tmp_path / "default" / "detector.pt", verdict="FAKE")
    monkeypatch.setattr(predict, "DEFAULT_CHECKPOINT", shipped)
    monkeypatch.delenv("DEEPFAKE_CHECKPOINT", raising=False)
    assert main([str(video)]) == 0
    out = capsys.readouterr().out
    assert f"model default (default/detector.pt)  sha256 {file_sha256(shipped)}" in out


def test_the_shipped_model_is_there():
    assert DEFAULT_CHECKPOINT.is_file()


def test_it_explains_a_missing_shipped_model(video, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(predict, "DEFAULT_CHECKPOINT", tmp_path / "default" / "detector.pt")
    monkeypatch.delenv("DEEPFAKE_CHECKPOINT", raising=False)
    assert main([str(video)]) == 2
    err = capsys.readouterr().err
    assert "is missing" in err and "--checkpoint" in err


def test_it_runs_as_a_module(video, checkpoint):
    result = subprocess.run(
        [sys.executable, "-m", "ml_core.cli.predict", str(video), "--checkpoint", str(checkpoint), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["label"] == "FAKE"
