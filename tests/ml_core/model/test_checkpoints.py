import argparse
import os

import pytest
import torch

from ml_core.errors import CheckpointError
from ml_core.model.checkpoints import (
    choose_reference_checkpoint,
    file_sha256,
    load_checkpoint,
    parse_reference_name,
    resolve_checkpoint,
    save_checkpoint,
)
from ml_core.model.detector import DeepfakeDetector, DetectorConfig
from tests.helpers.checkpoints import ReferenceDetector, make_reference_state_dict_file, make_tiny_checkpoint


@pytest.fixture(scope="module")
def reference_file(tmp_path_factory):
    """One full-size (~226 MB) reference-style file for the whole module."""
    return make_reference_state_dict_file(tmp_path_factory.mktemp("reference"), frames=40)


def test_it_loads_a_reference_state_dict_and_computes_what_the_reference_module_computes(reference_file):
    loaded = load_checkpoint(reference_file)
    assert loaded.kind == "reference"
    assert loaded.config.temporal == "reference" and loaded.config.lstm_bias is False
    assert loaded.config.sequence_length == 40  # from the file name
    assert loaded.name == "model_87_acc_40_frames_final_data"
    assert loaded.sha256 == file_sha256(reference_file)
    assert not loaded.model.training

    reference = ReferenceDetector().eval()
    reference.load_state_dict(torch.load(reference_file, weights_only=True), strict=True)
    last = DeepfakeDetector(DetectorConfig.reference(40, aggregation="last")).eval()
    last.load_state_dict(loaded.model.state_dict(), strict=True)
    torch.manual_seed(1)
    x = torch.rand(1, 3, 3, 112, 112)  # one video, three frames, as the reference app runs it
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x)[0], reference(x, "mean"), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(last(x)[0], reference(x, "last"), rtol=1e-4, atol=1e-5)


def test_our_format_round_trips(tmp_path):
    path = make_tiny_checkpoint(tmp_path / "tiny.pt", sequence_length=30, seed=3, uncertain_band=0.05)
    loaded = load_checkpoint(path)
    assert loaded.kind == "native" and not loaded.exported
    assert loaded.config == DetectorConfig.tiny(30, uncertain_band=0.05)
    assert loaded.metrics == {"val_auc": 0.5}
    assert loaded.provenance["seed"] == 3
    assert loaded.sha256 == file_sha256(path) and len(loaded.sha256) == 64
    assert loaded.name == "tiny"

    torch.manual_seed(3)
    original = DeepfakeDetector(DetectorConfig.tiny(30, uncertain_band=0.05)).eval()
    x = torch.rand(1, 4, 3, 112, 112)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x)[0], original(x)[0])


def test_it_saves_atomically_and_replaces_an_existing_file(tmp_path):
    model = DeepfakeDetector(DetectorConfig.tiny())
    path = tmp_path / "ckpt.pt"
    path.write_bytes(b"old")
    save_checkpoint(path, model, model.config, metrics={"val_auc": 0.9}, name="run 7")
    assert os.listdir(tmp_path) == ["ckpt.pt"]  # no temp file left behind
    checkpoint = torch.load(path, weights_only=True)
    assert set(checkpoint) == {"format_version", "model", "config", "metrics", "provenance", "name"}
    assert load_checkpoint(path).name == "run 7"


def test_it_refuses_a_truncated_file(tmp_path):
    path = make_tiny_checkpoint(tmp_path / "tiny.pt")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(path)


def test_it_refuses_an_html_page_saved_as_pt(tmp_path):
    path = tmp_path / "model_87_acc_20_frames_final_data.pt"
    path.write_text(
        "<!DOCTYPE html>\n<html><head><title>Google Drive - Virus scan warning</title></head></html>"
    )
    with pytest.raises(CheckpointError, match="HTML page") as info:
        load_checkpoint(path)
    assert "model_87_acc_20_frames_final_data.pt" in info.value.user_message


def test_it_refuses_an_empty_file(tmp_path):
    path = tmp_path / "empty.pt"
    path.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_checkpoint(path)


def test_it_refuses_a_state_dict_with_a_wrong_shape(tmp_path):
    model = DeepfakeDetector(DetectorConfig.tiny())
    state = model.state_dict()
    state["linear1.weight"] = torch.zeros(3, state["linear1.weight"].shape[1])
    path = tmp_path / "bad.pt"
    torch.save({"format_version": 1, "model": state, "config": model.config.to_dict()}, path)
    with pytest.raises(CheckpointError, match=r"wrong shape.*linear1\.weight \(3, 8\) \(expected \(2, 8\)\)"):
        load_checkpoint(path)


def test_it_refuses_a_bare_state_dict_of_another_architecture(tmp_path):
    path = tmp_path / "model_90_acc_20_frames_other.pt"
    torch.save({"lstm.weight_ih_l0": torch.zeros(4, 2), "linear1.weight": torch.zeros(2, 1)}, path)
    with pytest.raises(CheckpointError, match="missing keys"):
        load_checkpoint(path)
    torch.save({"conv.weight": torch.zeros(1)}, path)
    with pytest.raises(CheckpointError, match="not one of this detector"):
        load_checkpoint(path)


def test_it_loads_only_tensors_and_plain_values(tmp_path):
    # An argparse Namespace (what some training scripts pickle) would need arbitrary unpickling.
    model = DeepfakeDetector(DetectorConfig.tiny())
    path = tmp_path / "pickled.pt"
    torch.save({"format_version": 1, "model": model.state_dict(), "args": argparse.Namespace(lr=1)}, path)
    with pytest.raises(CheckpointError, match="weights_only"):
        load_checkpoint(path)


def test_it_refuses_an_unknown_format_version(tmp_path):
    path = tmp_path / "future.pt"
    torch.save({"format_version": 99, "model": {}, "config": {}}, path)
    with pytest.raises(CheckpointError, match="format_version 99"):
        load_checkpoint(path)


def test_it_parses_reference_file_names():
    assert parse_reference_name("model_93_acc_100_frames_final_data.pt").frames == 100
    assert parse_reference_name("dir/model_84.5_acc_10_frames_x.pth").accuracy == 84.5
    assert parse_reference_name("checkpoint.pt") is None


def test_it_chooses_reference_files_by_frames_then_numeric_accuracy(tmp_path):
    names = [
        "model_87_acc_20_frames_final_data.pt",
        "model_97_acc_100_frames_FF_data.pt",
        "model_100_acc_100_frames_other.pt",  # "97" > "100" as strings; not as numbers
        "model_84_acc_10_frames_final_data.pt",
    ]
    paths = [tmp_path / n for n in names]
    assert choose_reference_checkpoint(paths, 100).name == "model_100_acc_100_frames_other.pt"
    assert choose_reference_checkpoint(paths, 20).name == "model_87_acc_20_frames_final_data.pt"
    assert choose_reference_checkpoint(paths, 15).name == "model_87_acc_20_frames_final_data.pt"
    for path in paths:
        path.write_bytes(b"x")
    assert resolve_checkpoint(tmp_path, frames=10).name == "model_84_acc_10_frames_final_data.pt"


def test_it_refuses_to_guess_among_unnamed_checkpoints(tmp_path):
    (tmp_path / "a.pt").write_bytes(b"x")
    (tmp_path / "b.pt").write_bytes(b"x")
    with pytest.raises(CheckpointError, match="cannot choose"):
        resolve_checkpoint(tmp_path)
