import numpy as np
import pytest
import torch

from ml_core.inference.explain import fake_cams, overlay
from ml_core.model.detector import DeepfakeDetector, DetectorConfig


def tiny(**overrides):
    torch.manual_seed(0)
    return DeepfakeDetector(DetectorConfig.tiny(**overrides)).eval().requires_grad_(False)


@pytest.mark.parametrize("temporal", ["reference", "sequence"])
def test_it_returns_one_normalised_map_per_crop_in_both_modes(temporal):
    model = tiny(temporal=temporal)
    x = torch.rand(5, 3, 112, 112)
    cams = fake_cams(model, x, [3, 2])
    assert cams.shape == (5, 112, 112) and cams.dtype == np.float32
    assert cams.min() >= 0.0 and cams.max() <= 1.0 + 1e-6
    assert any(np.isclose(cam.max(), 1.0) for cam in cams)  # normalised per crop
    assert not model.model[7]._forward_hooks  # hook removed


def test_reference_mode_explains_each_crop_on_its_own():
    model = tiny(temporal="reference")
    x = torch.rand(4, 3, 112, 112)
    together = fake_cams(model, x, [4])
    alone = fake_cams(model, x[2:3], [1])
    np.testing.assert_allclose(together[2], alone[0], atol=1e-5)


def test_it_points_at_the_region_that_drives_the_fake_score():
    # A hand-made model whose FAKE logit grows with the last stage's activity: Grad-CAM must light
    # up where the input is bright and stay dark where it is black.
    model = tiny(temporal="reference", lstm_bias=False)
    x = torch.zeros(1, 3, 112, 112)
    x[:, :, :, 56:] = 1.0  # right half bright
    with torch.no_grad():
        for module in model.model.modules():
            if isinstance(module, torch.nn.Conv2d):
                module.weight.fill_(0.05)
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.zero_(), module.running_var.fill_(1.0)
                module.weight.fill_(1.0), module.bias.zero_()
        model.lstm.weight_ih_l0.fill_(1e-4)
        model.linear1.weight.zero_()
        model.linear1.weight[model.config.fake_index].fill_(1.0)
    cam = fake_cams(model, x, [1])[0]
    assert cam[:, 80:].mean() > 2 * cam[:, :30].mean()


def test_it_works_on_the_full_reference_backbone():
    torch.manual_seed(0)
    model = DeepfakeDetector(DetectorConfig.reference(20)).eval().requires_grad_(False)
    cams = fake_cams(model, torch.rand(2, 3, 112, 112), [2])
    assert cams.shape == (2, 112, 112) and np.isfinite(cams).all()


def test_it_runs_even_when_called_under_inference_mode():
    model = tiny()
    with torch.inference_mode():
        x = torch.rand(2, 3, 64, 64)
        cams = fake_cams(model, x, [2])
    assert cams.shape == (2, 64, 64)


def test_overlay_blends_a_heatmap_onto_the_crop():
    crop = np.full((112, 112, 3), 128, np.uint8)
    cam = np.zeros((56, 56), np.float32)
    cam[:, 28:] = 1.0
    image = overlay(crop, cam)
    assert image.shape == crop.shape and image.dtype == np.uint8
    # JET: hot = red (BGR channel 2), cold = blue (channel 0).
    assert image[:, 100, 2].mean() > image[:, 100, 0].mean()
    assert image[:, 5, 0].mean() > image[:, 5, 2].mean()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_it_works_on_cuda_in_both_modes():
    for temporal in ("reference", "sequence"):
        model = tiny(temporal=temporal)
        x = torch.rand(3, 3, 112, 112)
        cpu = fake_cams(model, x, [3])
        gpu = fake_cams(model.cuda().to(memory_format=torch.channels_last), x.cuda(), [3])
        np.testing.assert_allclose(cpu, gpu, atol=2e-2)
