import cv2
import numpy as np
import pytest
import torch

from ml_core.cli import train
from ml_core.inference.explain import fake_cams
from ml_core.inference.predictor import Predictor
from ml_core.model.checkpoints import load_checkpoint, save_checkpoint
from ml_core.model.detector import (
    RESIDUAL_GRID,
    RESIDUAL_WIDTHS,
    DeepfakeDetector,
    DetectorConfig,
    ResidualMaps,
)
from ml_core.model.transforms import crops_to_tensor
from ml_core.training.run import build_config
from tests.helpers.videos import face_patch
from tests.ml_core.inference.test_predictor import make_extraction


def residual(**overrides):
    torch.manual_seed(0)
    return DeepfakeDetector(DetectorConfig.residual(**overrides)).eval()


def maps_of(crops_bgr, config):
    """ResidualMaps of uint8 BGR crops, prepared exactly as inference prepares them."""
    with torch.no_grad():
        return ResidualMaps(config)(
            crops_to_tensor(
                crops_bgr,
                size=config.image_size,
                channel_order=config.channel_order,
                mean=config.mean,
                std=config.std,
            )
        )


@pytest.fixture
def crop():
    return cv2.resize(face_patch(), (128, 128), interpolation=cv2.INTER_AREA)


def test_the_residual_backbone_turns_a_crop_into_feature_dim_features():
    model = residual()
    assert len(model.model) == 8
    x = torch.rand(2, 3, 3, 128, 128)  # (B, T, C, H, W)
    assert model.model[0](x.flatten(0, 1)).shape == (
        6,
        ResidualMaps.out_channels,
        RESIDUAL_GRID,
        RESIDUAL_GRID,
    )
    assert model.features(x.flatten(0, 1)).shape == (6, RESIDUAL_WIDTHS[-1])
    video_logits, frame_logits = model(x)
    assert video_logits.shape == (2, 2) and frame_logits.shape == (2, 3, 2)


def test_the_residual_backbone_refuses_sizes_its_grid_does_not_divide():
    with pytest.raises(ValueError, match="multiple of 32"):
        DetectorConfig.residual(image_size=112)
    with pytest.raises(ValueError, match="residual backbone"):
        DetectorConfig.residual(feature_dim=64)


def test_a_blurred_face_inside_a_sharp_crop_shows_as_low_energy_where_it_was_blurred(crop):
    config = DetectorConfig.residual()
    pasted = crop.copy()
    pasted[32:96, 32:96] = cv2.GaussianBlur(crop, (0, 0), 2.0)[32:96, 32:96]
    laplacian = maps_of([crop, pasted], config)[:, 0]  # (2, G, G)
    inside = (slice(10, 22), slice(10, 22))  # grid cells well inside the blurred square
    drop_inside = (laplacian[0][inside] - laplacian[1][inside]).mean()
    drop_elsewhere = (laplacian[0, :6, :] - laplacian[1, :6, :]).mean()
    assert drop_inside > 1.0 and drop_inside > drop_elsewhere + 1.0


def test_the_colour_maps_ignore_the_overall_brightness_of_the_video(crop):
    config = DetectorConfig.residual()
    crop = (crop * 0.8).astype(np.uint8)  # room to brighten without clipping at 255
    brighter = crop + np.uint8(30)
    original, shifted = maps_of([crop, brighter], config)
    # Colour channels are centred per crop, so a uniform shift cancels.
    assert torch.allclose(original[4:], shifted[4:], atol=0.05)


def test_grad_cam_explains_residual_backbone_crops():
    model = residual().requires_grad_(False)
    cams = fake_cams(model, torch.rand(3, 3, 128, 128), [3])
    assert cams.shape == (3, 128, 128) and cams.min() >= 0.0 and cams.max() <= 1.0 + 1e-6


def test_a_residual_checkpoint_loads_strictly_and_predicts(tmp_path):
    model = residual()
    path = save_checkpoint(tmp_path / "residual.pt", model, model.config, metrics={"val_auc": 0.5})
    loaded = load_checkpoint(path)
    assert loaded.config.backbone == "residual" and loaded.config.image_size == 128
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value), key
    prediction = Predictor(path).predict(make_extraction({0: range(4)}, frames=4), explain=True)
    assert 0.0 <= prediction.fake_probability <= 1.0 and len(prediction.frame_probabilities) == 4


def test_the_trainer_builds_the_residual_backbone():
    args = ["--data", "d", "--out", "o", "--backbone", "residual", "--image-size", "160", "--frames", "6"]
    config = build_config(train.get_args_parser().parse_args(args))
    assert config.backbone == "residual" and config.image_size == 160 and config.sequence_length == 6
