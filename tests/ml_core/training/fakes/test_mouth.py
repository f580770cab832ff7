from pathlib import Path

import numpy as np
import pytest

from ml_core.training.fakes import mouth
from tests.ml_core.training.fakes.frames import shifted


def talking(astronaut, count=12):
    """The astronaut drifting, with her lips opening and closing (drawn as a dark gap)."""
    import cv2

    frame, points = astronaut
    frames, landmarks = [], []
    for t in range(count):
        moved, moved_points = shifted(frame, points, t % 4, t % 3)
        moved = moved.copy()
        opening = int(3 * (1 + np.sin(t)))
        lips = np.round(moved_points[60:68]).astype(np.int32)
        lips[4:, 1] += opening  # the lower inner lip drops
        cv2.fillPoly(moved, [lips], (40, 20, 30))
        frames.append(moved)
        landmarks.append(moved_points)
    return frames, np.stack(landmarks)


@pytest.mark.parametrize("seed", range(6))
def test_it_changes_only_the_mouth_region(astronaut, seed):
    frames, landmarks = talking(astronaut)
    params = mouth.sample_params(np.random.default_rng(seed), fps=10)
    results = list(mouth.mouth_clip(frames, landmarks, params))
    changed_somewhere = False
    for frame, points, result in zip(frames, landmarks, results):
        outside = result.mask == 0
        assert np.array_equal(result.image[outside], frame[outside])
        # Nothing at or above the eyes moves: rows down to the lowest eye point are untouched.
        eyes_bottom = int(np.ceil(points[36:48, 1].max()))
        assert np.array_equal(result.image[: eyes_bottom + 1], frame[: eyes_bottom + 1])
        assert result.mask[: eyes_bottom + 1].max() == 0
        changed_somewhere |= bool(np.any(result.image != frame))
    assert changed_somewhere


def test_the_borrowed_moment_stays_inside_the_segment():
    base = mouth.sample_params(np.random.default_rng(0), fps=25)
    for offset in (-30, -7, 5, 40):
        params = mouth.MouthParams(**{**base.to_dict(), "time_mode": "offset", "offset": offset})
        indices = [mouth.source_index(t, 20, params) for t in range(20)]
        assert all(0 <= i < 20 for i in indices)
        # Neighbouring frames borrow neighbouring moments: the fake mouth moves smoothly.
        assert all(abs(a - b) <= 1 for a, b in zip(indices, indices[1:]))
    reverse = mouth.MouthParams(**{**base.to_dict(), "time_mode": "reverse"})
    assert [mouth.source_index(t, 5, reverse) for t in range(5)] == [4, 3, 2, 1, 0]


def test_the_same_seed_gives_the_same_mouth_and_another_seed_other_choices(astronaut):
    frames, landmarks = talking(astronaut, count=6)
    first = mouth.sample_params(np.random.default_rng(3), fps=25)
    assert first == mouth.sample_params(np.random.default_rng(3), fps=25)
    assert first != mouth.sample_params(np.random.default_rng(4), fps=25)
    one = [r.image for r in mouth.mouth_clip(frames, landmarks, first)]
    two = [r.image for r in mouth.mouth_clip(frames, landmarks, first)]
    assert all(np.array_equal(a, b) for a, b in zip(one, two))


REAL_CLIP = Path("/work/shared/training/real/ffpp_c23_original_097.mp4")


@pytest.mark.slow
@pytest.mark.skipif(not REAL_CLIP.is_file(), reason="needs ../shared/training")
def test_a_real_clip_gets_a_mouth_fake_that_leaves_the_rest_of_the_face_alone():
    from ml_core.training.fakes.landmarks import track_landmarks
    from ml_core.training.fakes.segments import read_segment

    segment = read_segment(REAL_CLIP, 2.0, 1.2, max_side=480)
    track = track_landmarks(segment.frames)
    assert track.ok, track.detail
    assert len(track.landmarks) == len(segment)  # a frontal newsreader: every frame tracked
    frames = segment.frames[track.start : track.start + len(track.landmarks)]
    params = mouth.sample_params(np.random.default_rng(0), fps=float(segment.rate))
    for frame, points, result in zip(
        frames, track.landmarks, mouth.mouth_clip(frames, track.landmarks, params)
    ):
        outside = result.mask == 0
        assert np.array_equal(result.image[outside], frame[outside])
        eyes_bottom = int(np.ceil(points[36:48, 1].max()))
        assert np.array_equal(result.image[: eyes_bottom + 1], frame[: eyes_bottom + 1])
