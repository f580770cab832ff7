import cv2
import numpy as np
import pytest

from ml_core.training import sbi
from tests.helpers.videos import face_patch


@pytest.fixture(scope="module")
def crop():
    # Roughly the face box HOG finds on the astronaut photo, at the cache's 112 px.
    return cv2.resize(face_patch()[40:190, 55:205], (112, 112))


def ring_landmarks(centre=(56, 60), radius=(30, 36), count=68):
    angles = np.linspace(0, 2 * np.pi, count, endpoint=False)
    return np.stack(
        [centre[0] + radius[0] * np.cos(angles), centre[1] + radius[1] * np.sin(angles)], 1
    ).astype(np.float32)


def test_the_mask_stays_inside_the_face_hull(crop):
    landmarks = ring_landmarks()
    for seed in range(5):
        params = sbi.sample_params(np.random.default_rng(seed))
        mask = sbi.landmark_mask(crop.shape, landmarks, params)
        # The deformed hull can grow by hull_scale (<= 1.1) plus jitter (<= 2% of the side).
        allowed = np.zeros(crop.shape[:2], np.uint8)
        grown = (landmarks - (56, 60)) * 1.1 + (56, 60)
        cv2.fillConvexPoly(allowed, cv2.convexHull(grown.round().astype(np.int32)), 1)
        allowed = cv2.dilate(allowed, np.ones((7, 7), np.uint8))
        assert mask.max() > 0
        assert not np.any((mask > 0) & (allowed == 0))
        assert mask[:5, :5].max() == 0 and mask[-5:, -5:].max() == 0


def test_the_output_differs_from_the_input_only_inside_the_mask(crop):
    params = sbi.sample_params(np.random.default_rng(0))
    result = sbi.self_blend(crop, ring_landmarks(), params)
    changed = np.any(result.image != crop, axis=-1)
    assert changed.any()
    assert not np.any(changed & (result.mask == 0))
    assert result.used_landmarks


def test_it_falls_back_to_an_ellipse_without_landmarks(crop):
    params = sbi.sample_params(np.random.default_rng(1))
    result = sbi.self_blend(crop, None, params)
    assert not result.used_landmarks
    assert result.mask[56, 56] > 0 and result.mask[0, 0] == 0
    nan_landmarks = np.full((68, 2), np.nan, np.float32)
    assert not sbi.self_blend(crop, nan_landmarks, params).used_landmarks


def test_a_clip_uses_one_set_of_choices_and_counts_fallbacks(crop):
    crops = np.stack([crop, crop, crop])
    landmarks = np.stack([ring_landmarks(), np.full((68, 2), np.nan, np.float32), ring_landmarks()])
    fakes, fallbacks = sbi.self_blend_clip(crops, landmarks, np.random.default_rng(2))
    assert fallbacks == 1
    assert np.array_equal(fakes[0], fakes[2])  # same frame, same choices -> same fake
    assert not np.array_equal(fakes[0], crop)


def test_it_finds_68_plausible_landmarks_on_a_real_face(crop):
    points = sbi.detect_landmarks(crop)
    assert points is not None and points.shape == (68, 2)
    # Eyes (36-47) above the mouth (48-67), nose tip in between.
    assert points[36:48, 1].mean() < points[30, 1] < points[48:68, 1].mean()


def test_it_rejects_landmarks_that_fall_outside_the_crop_or_cover_nothing():
    assert sbi.plausible_landmarks(ring_landmarks(), sbi.full_box((112, 112)))
    assert not sbi.plausible_landmarks(ring_landmarks(centre=(300, 300)), sbi.full_box((112, 112)))
    assert not sbi.plausible_landmarks(ring_landmarks(radius=(3, 3)), sbi.full_box((112, 112)))


def test_face_recognition_lip_points_map_to_dlib_order():
    points = [(i, i) for i in range(68)]
    groups = {
        "chin": points[0:17],
        "left_eyebrow": points[17:22],
        "right_eyebrow": points[22:27],
        "nose_bridge": points[27:31],
        "nose_tip": points[31:36],
        "left_eye": points[36:42],
        "right_eye": points[42:48],
        "top_lip": points[48:55] + [points[64], points[63], points[62], points[61], points[60]],
        "bottom_lip": points[54:60]
        + [points[48], points[60], points[67], points[66], points[65], points[64]],
    }
    assert sbi.landmarks_from_face_recognition(groups)[:, 0].tolist() == list(range(68))


def test_the_fallback_ellipse_sits_inside_the_face_box(crop):
    box = (30.0, 90.0, 100.0, 20.0)  # top, right, bottom, left: a face in a crop cut with a margin
    for seed in range(3):
        result = sbi.self_blend(crop, None, sbi.sample_params(np.random.default_rng(seed)), box)
        rows, columns = np.nonzero(result.mask)
        assert rows.min() >= 30 and rows.max() < 100 and columns.min() >= 20 and columns.max() < 90
