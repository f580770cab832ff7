"""Exact boxes: what full-resolution HOG (the reference app's detector) gives, not an approximation."""

import cv2
import numpy as np
import pytest

from ml_core.media.boxes import iou
from ml_core.media.extraction import ExtractConfig, extract_faces
from ml_core.media.faces import detect
from ml_core.media.hog_exact import ExactBoxes
from ml_core.model.detector import DetectorConfig
from tests.helpers.videos import face_patch, write_video


def _full_resolution_hog(frame):
    import dlib

    found = dlib.get_frontal_face_detector()(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), 1)
    return [(r.top(), r.right(), r.bottom(), r.left()) for r in found]


def _canvas(face_side, x, y, size=(1280, 720), seed=0):
    width, height = size
    rng = np.random.default_rng(seed)
    frame = np.full((height, width, 3), 100, np.uint8) + rng.integers(
        0, 12, (height, width, 3), dtype=np.uint8
    )
    frame[y : y + face_side, x : x + face_side] = cv2.resize(face_patch(), (face_side, face_side))
    return frame


@pytest.mark.parametrize(
    ("face_side", "x", "y"), [(520, 300, 100), (330, 613, 201), (210, 57, 333), (150, 901, 40)]
)
def test_refined_boxes_equal_full_resolution_hog_boxes(face_side, x, y):
    frame = _canvas(face_side, x, y)
    (expected,) = _full_resolution_hog(frame)
    rough = detect(frame, 1.0)  # a box found at another scale: near, but not the exact one
    assert rough, "the working-scale detector should find the face"
    box, score = ExactBoxes(frame).refine(rough[0].box)
    assert box == expected
    assert score > 0


def test_a_rough_box_a_pyramid_level_off_still_gets_the_exact_box():
    frame = _canvas(330, 613, 201)
    (expected,) = _full_resolution_hog(frame)
    top, right, bottom, left = expected
    cy, cx, half = (top + bottom) / 2, (left + right) / 2, (right - left) * 1.2 / 2  # 1.2x larger
    rough = (int(cy - half), int(cx + half), int(cy + half), int(cx - half))
    assert ExactBoxes(frame).refine(rough)[0] == expected


def test_nothing_is_returned_where_full_resolution_hog_finds_no_face():
    frame = np.full((720, 1280, 3), 100, np.uint8)
    assert _full_resolution_hog(frame) == []
    assert ExactBoxes(frame).refine((200, 700, 400, 500)) is None


def test_extraction_with_exact_boxes_matches_full_resolution_hog_on_every_frame(tmp_path):
    frames = []
    for i in range(12):
        side = 180 + 12 * i  # the face grows: several pyramid levels are crossed
        frames.append(_canvas(side, 200 + 9 * i, 80 + 5 * i, size=(960, 540), seed=i))
    path = write_video(tmp_path / "growing.mp4", frames, fps=5.0)
    extraction = extract_faces(path, ExtractConfig(frames=12, boxes="exact"))
    fast = extract_faces(path, ExtractConfig(frames=12))
    assert extraction.stats["exact_boxes"] == len(extraction.track()) == 12
    from ml_core.media.video import iter_frames

    decoded = {d.index: d.image for d in iter_frames(path, 12)}
    for frame, face in extraction.track():
        (expected,) = _full_resolution_hog(decoded[frame.index])
        assert face.box == expected
    # The fast boxes are the same faces, in the same places.
    for (_, exact), (_, quick) in zip(extraction.track(), fast.track()):
        assert iou(exact.box, quick.box) > 0.5


def test_reference_checkpoints_ask_for_exact_boxes_and_our_training_for_fast_ones():
    from ml_core.inference.predictor import Predictor

    assert DetectorConfig.reference().face_boxes == "exact"
    assert DetectorConfig.native().face_boxes == "fast"
    assert DetectorConfig.from_dict({"backbone": "tiny", "feature_dim": 64}).face_boxes == "fast"
    predictor = Predictor.__new__(Predictor)
    predictor.config = DetectorConfig.reference()
    assert predictor.extract_config().boxes == "exact"


def test_exact_boxes_need_the_hog_detector():
    with pytest.raises(ValueError, match="hog"):
        ExtractConfig(detector="cnn", boxes="exact")
    with pytest.raises(ValueError):
        ExtractConfig(boxes="approximate")


def test_a_dlib_build_that_cannot_give_exact_boxes_falls_back_to_fast_ones_and_says_so(tmp_path, monkeypatch):
    from ml_core.media import hog_exact

    def refuse():
        raise hog_exact.ExactBoxUnavailable("unexpected layout")

    monkeypatch.setattr(hog_exact, "_detector", refuse)
    monkeypatch.setattr(hog_exact, "_unavailable", [])
    frames = [_canvas(330, 300 + 4 * i, 150, size=(960, 540), seed=i) for i in range(10)]
    path = write_video(tmp_path / "face.mp4", frames, fps=5.0)
    extraction = extract_faces(path, ExtractConfig(frames=10, boxes="exact"))
    assert extraction.stats["exact_boxes"] is None
    assert any("fast ones were used" in w for w in extraction.warnings)
    assert len(extraction.track()) == 10
