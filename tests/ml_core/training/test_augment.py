import numpy as np

from ml_core.training.augment import PRESETS, AugmentConfig, augment_clip


def clip(seed=0):
    return np.random.default_rng(seed).integers(0, 256, (4, 48, 48, 3), dtype=np.uint8)


def only(**kwargs):
    return AugmentConfig(flip=0, colour=0, compression=0, blur=0, **kwargs)


def test_every_preset_keeps_the_clips_shape_and_type():
    for name, config in PRESETS.items():
        out = augment_clip(clip(), np.random.default_rng(1), config)
        assert out.shape == (4, 48, 48, 3) and out.dtype == np.uint8, name


def test_rescaling_softens_detail_without_changing_the_size():
    frames = clip()
    out = augment_clip(frames, np.random.default_rng(0), only(rescale=1.0, rescale_range=(0.3, 0.3)))
    assert out.shape == frames.shape
    # Noise does not survive a 30 % detour: neighbouring pixels become alike.
    assert (
        np.abs(np.diff(out.astype(int), axis=2)).mean()
        < 0.5 * np.abs(np.diff(frames.astype(int), axis=2)).mean()
    )


def test_h264_augmentation_is_reproducible_from_the_generator_and_changes_the_pixels():
    config = only(h264=1.0, h264_crf=(35, 35))
    first = augment_clip(clip(), np.random.default_rng(3), config)
    assert np.array_equal(first, augment_clip(clip(), np.random.default_rng(3), config))
    assert np.abs(first.astype(int) - clip().astype(int)).mean() > 5


def test_the_robust_preset_recompresses_most_clips_with_h264():
    assert PRESETS["robust"].h264 >= 0.5 and PRESETS["robust"].rescale > 0
    assert only().h264 == 0 and PRESETS["none"].h264 == 0
