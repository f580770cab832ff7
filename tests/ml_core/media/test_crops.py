import numpy as np
import pytest
import torch

from ml_core.media.extraction import ExtractConfig, crop_face, extract_faces
from ml_core.media.video import iter_frames
from ml_core.model.transforms import IMAGENET_MEAN, IMAGENET_STD, crops_to_tensor
from tests.helpers.videos import make_face_video


def gradient_image(height=100, width=200):
    image = np.zeros((height, width, 3), np.uint8)
    image[:, :, 0] = np.arange(width)[None, :] % 256
    image[:, :, 1] = np.arange(height)[:, None] % 256
    return image


def test_a_tight_crop_is_exactly_the_box_resized():
    image = gradient_image()
    crop, crop_box = crop_face(image, (10, 60, 50, 20), margin=0.0, size=40)
    assert crop_box == (10, 60, 50, 20)
    assert crop.shape == (40, 40, 3) and crop.dtype == np.uint8
    assert np.array_equal(crop, image[10:50, 20:60])


def test_a_margin_grows_the_box_on_each_side():
    _, crop_box = crop_face(gradient_image(), (20, 120, 60, 80), margin=0.25, size=16)
    assert crop_box == (10, 130, 70, 70)


def test_a_crop_at_the_border_is_clamped_not_wrapped_around():
    image = gradient_image()
    crop, crop_box = crop_face(image, (0, 30, 40, 0), margin=0.5, size=16)
    assert crop_box == (0, 45, 60, 0)  # no negative index: no slice from the far side
    expected = crop_face(image, crop_box, margin=0.0, size=16)[0]
    assert np.array_equal(crop, expected)
    assert crop[:, 0, 0].max() < 30  # left column comes from the left edge, not from x = 180+


def test_the_crops_the_model_sees_are_the_crops_of_the_reported_boxes(tmp_path):
    path = make_face_video(tmp_path / "face.mp4", count=20)
    extraction = extract_faces(path, ExtractConfig(frames=10, margin=0.2, crop_size=64))
    frames = {f.index: f.image for f in iter_frames(path, 10)}
    for frame, face in extraction.track():
        crop, crop_box = crop_face(frames[frame.index], face.box, 0.2, 64)
        assert face.crop_box == crop_box
        assert np.array_equal(face.crop, crop)


def test_crops_become_bgr_imagenet_normalised_tensors():
    blue = np.zeros((112, 112, 3), np.uint8)
    blue[:, :, 0] = 255  # BGR: channel 0 is blue
    tensor = crops_to_tensor([blue, blue])
    assert tensor.shape == (2, 3, 112, 112) and tensor.dtype == torch.float32
    # Channel 0 keeps the blue pixels and gets the first ImageNet statistics, as in training.
    assert tensor[0, 0, 0, 0].item() == pytest.approx((1 - IMAGENET_MEAN[0]) / IMAGENET_STD[0], abs=1e-5)
    assert tensor[0, 2, 0, 0].item() == pytest.approx((0 - IMAGENET_MEAN[2]) / IMAGENET_STD[2], abs=1e-5)


def test_rgb_order_and_custom_statistics_follow_the_config():
    blue = np.zeros((20, 30, 3), np.uint8)
    blue[:, :, 0] = 255
    tensor = crops_to_tensor([blue], size=8, channel_order="RGB", mean=(0, 0, 0), std=(1, 1, 1))
    assert tensor.shape == (1, 3, 8, 8)
    assert tensor[0, 2].min().item() == pytest.approx(1.0)  # blue moved to the last channel
    assert tensor[0, 0].max().item() == pytest.approx(0.0)


def test_it_rejects_bad_crops():
    with pytest.raises(ValueError):
        crops_to_tensor([])
    with pytest.raises(ValueError):
        crops_to_tensor([np.zeros((10, 10), np.uint8)])
    with pytest.raises(ValueError):
        crops_to_tensor([np.zeros((10, 10, 3), np.uint8)], channel_order="GRB")


def test_one_resize_rule_area_when_shrinking_bilinear_when_enlarging():
    import cv2

    from ml_core.resizing import resize_square

    rng = np.random.default_rng(0)
    large = rng.integers(0, 256, (300, 200, 3), dtype=np.uint8)
    small = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    same = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert np.array_equal(resize_square(large, 64), cv2.resize(large, (64, 64), interpolation=cv2.INTER_AREA))
    assert np.array_equal(
        resize_square(small, 64), cv2.resize(small, (64, 64), interpolation=cv2.INTER_LINEAR)
    )
    copied = resize_square(same, 64)
    assert np.array_equal(copied, same) and not np.shares_memory(copied, same)
