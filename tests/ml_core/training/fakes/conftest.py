"""A real face with real dlib landmarks, from the astronaut photo (no network, no video)."""

import cv2
import pytest

from tests.helpers.videos import face_patch
from tests.ml_core.training.fakes.frames import place


@pytest.fixture(scope="session")
def astronaut():
    """(frame, landmarks): the astronaut's face on a 320x240 frame and its 68 dlib points."""
    from ml_core.training.fakes.landmarks import detect_faces, predict_landmarks

    frame = place(cv2.resize(face_patch(), (200, 200)), at=(60, 20))
    boxes = detect_faces(frame, 640)
    points = predict_landmarks(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), boxes[0])
    assert points is not None
    return frame, points
