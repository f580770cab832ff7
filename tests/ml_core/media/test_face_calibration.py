"""MTCNN boxes mapped onto HOG's: the fit recovers a known mapping, the checked-in one is used."""

import json

import numpy as np
import pytest

from ml_core.media import face_calibration
from ml_core.media.face_calibration import CALIBRATION_FILE, fit_mtcnn_to_hog, mtcnn_to_hog


def test_the_fit_recovers_the_mapping_that_made_the_boxes():
    truth = {"dx": 0.02, "dy": 0.06, "sw": 0.9, "sh": 0.15}
    rng = np.random.default_rng(0)
    pairs = []
    for _ in range(50):
        x1, y1 = rng.uniform(0, 500, 2)
        w = rng.uniform(40, 200)
        h = w / rng.uniform(0.65, 0.85)  # MTCNN's boxes are taller than wide
        box = (x1, y1, x1 + w, y1 + h)
        pairs.append((mtcnn_to_hog(*box, mapping=truth), box))
    fitted = fit_mtcnn_to_hog(pairs)
    assert fitted == pytest.approx(truth, abs=0.002)


def test_the_checked_in_mapping_is_the_one_detection_uses():
    recorded = json.loads(CALIBRATION_FILE.read_text())
    assert face_calibration.mtcnn_to_hog_mapping() == recorded["mapping"]
    top, right, bottom, left = mtcnn_to_hog(100, 100, 174, 200)  # a 74 x 100 MTCNN box
    assert right - left == pytest.approx(bottom - top)  # HOG's boxes are square
    m = recorded["mapping"]
    assert right - left == pytest.approx(m["sw"] * 74 + m["sh"] * 100)
