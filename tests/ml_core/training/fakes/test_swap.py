import cv2
import numpy as np
import pytest

from ml_core.training.fakes import swap
from tests.ml_core.training.fakes.frames import shifted


@pytest.fixture(scope="module")
def source(astronaut):
    """Another 'person': the astronaut mirrored, tinted and larger (points follow the image)."""
    frame, points = astronaut
    [mirrored], [flipped] = swap.mirrored([frame], points[None])
    tinted = np.clip(mirrored.astype(np.int16) + (30, -10, -20), 0, 255).astype(np.uint8)
    big = cv2.resize(tinted, None, fx=1.2, fy=1.2)
    return big, flipped * 1.2


def clip(astronaut, count=4):
    frame, points = astronaut
    moved = [shifted(frame, points, dx, dx // 2) for dx in range(count)]
    return [m[0] for m in moved], np.stack([m[1] for m in moved])


@pytest.mark.parametrize("seed", range(6))
def test_it_changes_only_pixels_inside_the_mask(astronaut, source, seed):
    frames, landmarks = clip(astronaut)
    params = swap.sample_params(np.random.default_rng(seed))
    results = list(swap.swap_clip(frames, landmarks, [source[0]], source[1][None], params))
    for frame, result in zip(frames, results):
        outside = result.mask == 0
        assert np.array_equal(result.image[outside], frame[outside])
        assert np.any(result.image[~outside] != frame[~outside])


def test_the_mask_stays_on_the_face(astronaut, source):
    frame, points = astronaut
    params = swap.sample_params(np.random.default_rng(0))
    triangles = swap.triangulate(swap.extend(points, 1.3))
    result, _ = swap.swap_frame(frame, points, source[0], source[1], params, triangles)
    allowed = np.zeros(frame.shape[:2], np.uint8)
    centre = points.mean(axis=0)
    grown = centre + (points - centre) * 1.05  # the largest hull scale
    cv2.fillConvexPoly(allowed, cv2.convexHull(np.round(grown).astype(np.int32)), 1)
    assert result.mask.max() > 0.8
    assert not np.any((result.mask > 0) & (allowed == 0))


def test_the_warp_puts_source_landmarks_on_the_target_landmarks(astronaut, source):
    frame, points = astronaut
    # A source made of coloured dots at its landmarks: after the warp each dot sits on the
    # target's landmark of the same number.
    image = np.zeros((300, 300, 3), np.uint8)
    source_points = points * 0.9 + 20
    extended_source = swap.extend(source_points, 1.3)
    extended_target = swap.extend(points, 1.3)
    for number in (8, 30, 36, 45, 48, 54):
        cv2.circle(image, tuple(int(v) for v in np.round(source_points[number])), 2, (255, 255, 255), -1)
    roi = (0, frame.shape[0], 0, frame.shape[1])
    warped, covered = swap.warp_triangles(
        image, extended_source, extended_target, swap.triangulate(extended_target), roi
    )
    for number in (8, 30, 36, 45, 48, 54):
        x, y = np.round(points[number]).astype(int)
        assert covered[y, x]
        assert warped[y - 1 : y + 2, x - 1 : x + 2].max() > 200


def test_the_same_seed_gives_the_same_fake_and_another_seed_other_choices(astronaut, source):
    frames, landmarks = clip(astronaut, count=3)
    first = swap.sample_params(np.random.default_rng(7))
    assert first == swap.sample_params(np.random.default_rng(7))
    assert first != swap.sample_params(np.random.default_rng(8))
    one = [r.image for r in swap.swap_clip(frames, landmarks, [source[0]], source[1][None], first)]
    two = [r.image for r in swap.swap_clip(frames, landmarks, [source[0]], source[1][None], first)]
    assert all(np.array_equal(a, b) for a, b in zip(one, two))


def test_a_source_run_plays_back_and_forth_inside_the_source():
    params = swap.sample_params(np.random.default_rng(0))
    params = swap.SwapParams(**{**params.to_dict(), "source_run": 4, "source_start": 0.5})
    indices = [swap.source_index(t, params, available=10) for t in range(12)]
    assert indices == [3, 4, 5, 6, 5, 4, 3, 4, 5, 6, 5, 4]
    still = swap.SwapParams(**{**params.to_dict(), "source_run": 1})
    assert {swap.source_index(t, still, available=10) for t in range(12)} == {4}


def test_a_face_at_the_frame_border_falls_back_from_poisson_blending(astronaut, source):
    frame, points = astronaut
    frame, points = shifted(frame, points, -points[:, 0].min() + 1, 0)  # the jaw touches the left edge
    params = swap.sample_params(np.random.default_rng(0))
    params = swap.SwapParams(**{**params.to_dict(), "blend": "seamless", "hull_scale": 1.04})
    triangles = swap.triangulate(swap.extend(points, 1.3))
    result, _ = swap.swap_frame(frame, points, source[0], source[1], params, triangles)
    outside = result.mask == 0
    assert np.array_equal(result.image[outside], frame[outside])


def test_a_source_turned_the_other_way_is_mirrored_to_match(astronaut):
    from ml_core.training.fakes.landmarks import yaw

    frame, points = astronaut
    turned = points.copy()
    turned[27:36, 0] += 0.2 * np.linalg.norm(points[45] - points[36])  # a three-quarter view
    assert yaw(turned) > 0.1
    [flipped_frame], flipped = swap.mirrored([frame], turned[None])
    assert yaw(flipped[0]) < -0.1  # the same face, turned the other way
    assert swap.facing_other_way(turned[None], flipped)
    assert not swap.facing_other_way(turned[None], turned[None])
    [back_frame], back = swap.mirrored([flipped_frame], flipped)
    assert np.array_equal(back_frame, frame)
    np.testing.assert_allclose(back[0], turned, atol=1e-4)
