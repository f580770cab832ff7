import numpy as np
import pytest
import torch

from ml_core.cli import train
from ml_core.inference.explain import fake_cams
from ml_core.inference.predictor import Predictor
from ml_core.model.checkpoints import load_checkpoint, save_checkpoint
from ml_core.model.detector import SMALL_WIDTHS, DeepfakeDetector, DetectorConfig
from ml_core.training.run import build_config
from tests.ml_core.inference.test_predictor import make_extraction


def small(**overrides):
    torch.manual_seed(0)
    return DeepfakeDetector(DetectorConfig.small(**overrides)).eval()


def test_the_small_backbone_ends_in_a_last_stage_feature_map_of_feature_dim_channels():
    model = small()
    assert len(model.model) == 8
    x = torch.rand(2, 3, 3, 112, 112)  # (B, T, C, H, W)
    last = model.model[7](model.model[:7](x.flatten(0, 1)))
    assert last.shape == (6, SMALL_WIDTHS[-1], 7, 7)
    video_logits, frame_logits = model(x)
    assert video_logits.shape == (2, 2) and frame_logits.shape == (2, 3, 2)


def test_the_small_backbone_refuses_another_feature_width():
    with pytest.raises(ValueError, match="small backbone"):
        DetectorConfig.small(feature_dim=64)


@pytest.mark.parametrize("temporal", ["reference", "sequence"])
def test_grad_cam_explains_small_backbone_crops(temporal):
    model = small(temporal=temporal).requires_grad_(False)
    cams = fake_cams(model, torch.rand(3, 3, 112, 112), [3])
    assert cams.shape == (3, 112, 112) and cams.min() >= 0.0 and cams.max() <= 1.0 + 1e-6
    assert not model.model[7]._forward_hooks


def test_a_small_checkpoint_loads_strictly_and_predicts_with_overlays(tmp_path):
    model = small(margin=0.25)
    path = save_checkpoint(tmp_path / "small.pt", model, model.config, metrics={"val_auc": 0.5})
    loaded = load_checkpoint(path)
    assert loaded.kind == "native" and loaded.config.backbone == "small" and loaded.config.margin == 0.25
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value), key
    prediction = Predictor(path).predict(make_extraction({0: range(4)}, frames=4), explain=True)
    assert 0.0 <= prediction.fake_probability <= 1.0
    assert len(prediction.frame_probabilities) == 4
    assert len(prediction.overlays[0]) == 4 and prediction.overlays[0][0].dtype == np.uint8


def test_the_trainer_builds_the_small_backbone_in_both_modes():
    base = ["--data", "d", "--out", "o", "--backbone", "small", "--hidden-size", "32", "--frames", "6"]
    native = build_config(train.get_args_parser().parse_args(base))
    reference = build_config(train.get_args_parser().parse_args([*base, "--mode", "reference"]))
    assert native.backbone == reference.backbone == "small"
    assert native.temporal == "sequence" and native.hidden_size == 32 and native.sequence_length == 6
    assert reference.temporal == "reference" and not reference.lstm_bias
