import cv2
import numpy as np

from ml_core.training.fakes.landmarks import LandmarkConfig, smooth, track_landmarks, turned_away
from tests.helpers.videos import face_frames, face_patch
from tests.ml_core.training.fakes.frames import place


def test_it_tracks_the_face_in_every_frame_between_detections():
    frames = face_frames(count=12, size=(320, 240), face_size=240)
    track = track_landmarks(frames, LandmarkConfig(detect_every=5, min_frames=8))
    assert track.ok, track.detail
    assert track.landmarks.shape == (12, 68, 2)
    assert track.stats["detections"] == 3  # frames 0, 5 and 10; the rest were tracked
    assert np.isfinite(track.landmarks).all()


def test_it_refuses_a_clip_with_no_face():
    frames = [np.full((240, 320, 3), 90, np.uint8) for _ in range(20)]
    track = track_landmarks(frames)
    assert track.reason == "no_face"
    assert track.landmarks is None


def test_it_refuses_a_clip_with_two_people_of_the_same_size():
    track = track_landmarks(
        face_frames(count=10, size=(480, 240), second_face=True), LandmarkConfig(min_frames=5)
    )
    assert track.reason == "several_people"


def test_it_refuses_a_face_smaller_than_the_minimum():
    track = track_landmarks(face_frames(count=10), LandmarkConfig(min_face=400, min_frames=5))
    assert track.reason == "tiny_face"


def test_it_calls_a_face_with_the_nose_far_to_one_side_turned_away(astronaut):
    _, points = astronaut
    config = LandmarkConfig()
    assert not turned_away(points, config)
    profile = points.copy()
    eye_distance = np.linalg.norm(points[45] - points[36])
    profile[27:36, 0] += 0.6 * eye_distance  # the nose swings towards one cheek
    assert turned_away(profile, config)


def test_smoothing_removes_jitter_and_keeps_a_still_face_in_place(astronaut):
    _, points = astronaut
    rng = np.random.default_rng(0)
    jittered = points[None] + rng.normal(0, 1.5, (30, 68, 2)).astype(np.float32)
    smoothed = smooth(jittered, 5)
    assert np.abs(np.diff(smoothed, axis=0)).mean() < 0.5 * np.abs(np.diff(jittered, axis=0)).mean()
    still = np.repeat(points[None], 10, axis=0)
    np.testing.assert_allclose(smooth(still, 5), still, atol=1e-4)


def test_a_scene_cut_ends_the_tracked_run():
    # The face jumps 240 px (three face sizes) between frames 9 and 10, as at a cut.
    patch = cv2.resize(face_patch(), (240, 240))
    left = [place(patch, size=(480, 240), at=(0, 0)) for _ in range(10)]
    right = [place(patch, size=(480, 240), at=(240, 0)) for _ in range(10)]
    track = track_landmarks(left + right, LandmarkConfig(min_frames=5))
    assert track.ok, track.detail
    assert len(track.landmarks) == 10
    assert track.start in (0, 10)
