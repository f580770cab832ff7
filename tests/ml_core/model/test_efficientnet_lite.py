import cv2
import numpy as np
import pytest
import torch
from skimage import data

from ml_core.model.detector import DeepfakeDetector, DetectorConfig
from ml_core.model.efficientnet_lite import (
    FEATURES,
    SamePadConv2d,
    build_lite,
    imagenet_state_dict,
    load_imagenet,
)
from ml_core.model.transforms import crops_to_tensor

# ImageNet-1k class indices: the domestic cats (tabby, tiger cat, Persian, Siamese, Egyptian cat)
# and the coffee classes (espresso, cup, coffee mug).
CATS = {281, 282, 283, 284, 285}
COFFEE = {967, 968, 504}


@pytest.fixture(scope="module", params=["efficientnet_lite0", "efficientnet_lite2"])
def imagenet_model(request):
    backbone = build_lite(request.param).eval()
    classifier = load_imagenet(request.param, backbone).eval()
    return request.param, backbone, classifier


def top5(backbone, classifier, rgb, size):
    config = DetectorConfig.lite(image_size=size)
    # The detector's own preprocessing (BGR crops in, the checkpoint's channel order and scaling).
    x = crops_to_tensor(
        [cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)],
        size=size,
        channel_order=config.channel_order,
        mean=config.mean,
        std=config.std,
    )
    with torch.no_grad():
        logits = classifier(backbone(x).mean(dim=(2, 3)))
    return set(logits.topk(5).indices[0].tolist())


@pytest.mark.parametrize("size", [224, 160, 193])
def test_the_installed_imagenet_weights_recognise_a_cat_and_an_espresso(imagenet_model, size):
    # Random or misloaded weights (or wrong padding / scaling) cannot put the right class in the
    # top 5 of 1000 for both pictures at three input sizes, one of them odd.
    _, backbone, classifier = imagenet_model
    assert top5(backbone, classifier, data.chelsea(), size) & CATS
    assert top5(backbone, classifier, data.coffee(), size) & COFFEE


def test_every_backbone_tensor_comes_from_the_wheel_and_nothing_is_left_over(imagenet_model):
    name, backbone, _ = imagenet_model
    state, classifier = imagenet_state_dict(name, backbone)
    assert set(state) == set(backbone.state_dict())
    assert classifier["weight"].shape == (1000, FEATURES)


def test_same_padding_pads_more_at_the_bottom_right_like_tensorflow():
    conv = SamePadConv2d(1, 1, 3, stride=2)
    conv.weight.data.zero_()
    conv.weight.data[0, 0, 2, 2] = 1.0  # picks the bottom-right pixel of each window
    x = torch.arange(16.0).view(1, 1, 4, 4)
    # TensorFlow: 4 px, stride 2, kernel 3 -> 1 px of padding, all of it after the image, so the
    # windows start at rows/columns 0 and 2: the first reads pixel (2, 2) = 10, the others reach
    # the padded zeros. PyTorch's symmetric padding=1 would read 5, 7, 13 and 15 instead.
    assert conv(x)[0, 0].tolist() == [[10.0, 0.0], [0.0, 0.0]]
    for size in (159, 160, 161):
        assert conv(torch.zeros(1, 1, size, size)).shape[-1] == -(-size // 2)


def test_a_lite_detector_gives_1280_features_and_grad_cam_has_a_last_stage():
    config = DetectorConfig.lite(image_size=96, sequence_length=3)
    model = DeepfakeDetector(config).eval()
    x = torch.randn(2, 3, 3, 96, 96)
    video_logits, frame_logits = model(x)
    assert video_logits.shape == (2, 2) and frame_logits.shape == (2, 3, 2)
    assert model.features(x[0]).shape == (3, FEATURES)
    assert model.model[7](torch.randn(1, 320, 3, 3)).shape == (1, FEATURES, 3, 3)


def test_a_frozen_stage_keeps_its_weights_and_batch_norm_statistics_while_the_rest_trains():
    model = DeepfakeDetector(DetectorConfig.lite(image_size=64, sequence_length=2))
    model.freeze_backbone(3)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(trainable, lr=0.1)
    video_logits, _ = model(torch.randn(2, 2, 3, 64, 64))
    video_logits.sum().backward()
    optimizer.step()
    after = model.state_dict()
    frozen = [k for k in before if k.startswith(("model.0.", "model.1.", "model.2."))]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)
    bn_mean = "model.3.0.project.1.running_mean"
    assert not torch.equal(before[bn_mean], after[bn_mean])
    assert not torch.equal(before["linear1.weight"], after["linear1.weight"])
    assert model.model[0].training is False and model.model[3].training is True


def test_the_lite_config_records_lites_own_input_scaling():
    config = DetectorConfig.lite()
    assert config.channel_order == "RGB"
    # (x - 127) / 128 on 0..255 pixels.
    white = np.full((1, 8, 8, 3), 255, np.uint8)
    x = crops_to_tensor(list(white), size=8, channel_order="RGB", mean=config.mean, std=config.std)
    assert x.max().item() == pytest.approx(128 / 128, abs=1e-6)
    with pytest.raises(ValueError, match="1280"):
        DetectorConfig.lite(feature_dim=512)
