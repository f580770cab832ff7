"""MTCNN boxes as the HOG boxes models were trained on.

HOG's boxes are square (MTCNN's are 0.74 as wide as tall), a little lower and wider than MTCNN's
width. For an MTCNN box (x1, y1, x2, y2) of width w and height h:
    centre x += dx * w, centre y += dy * h, side = sw * w + sh * h
The four numbers are fitted by least squares (`fit_mtcnn_to_hog`) on frames where both detectors
found the same single face, by `scripts/fit_mtcnn_to_hog.py`, which writes them to
mtcnn_to_hog.json beside this file (checked in, with the clips and pair count they came from).
"""

import json
from functools import cache
from pathlib import Path

import numpy as np

CALIBRATION_FILE = Path(__file__).with_name("mtcnn_to_hog.json")


@cache
def mtcnn_to_hog_mapping() -> dict:
    return json.loads(CALIBRATION_FILE.read_text())["mapping"]


def mtcnn_to_hog(x1, y1, x2, y2, mapping=None):
    """An MTCNN box as the (top, right, bottom, left) box HOG would give the same face."""
    m = mapping or mtcnn_to_hog_mapping()
    w, h = x2 - x1, y2 - y1
    cx, cy = (x1 + x2) / 2 + m["dx"] * w, (y1 + y2) / 2 + m["dy"] * h
    half = (m["sw"] * w + m["sh"] * h) / 2
    return cy - half, cx + half, cy + half, cx - half


def fit_mtcnn_to_hog(pairs):
    """The mapping from [(hog (top, right, bottom, left), mtcnn (x1, y1, x2, y2))], least squares."""
    hog = np.array([p[0] for p in pairs], float)
    mt = np.array([p[1] for p in pairs], float)
    w, h = mt[:, 2] - mt[:, 0], mt[:, 3] - mt[:, 1]
    dx = np.linalg.lstsq(w[:, None], (hog[:, 1] + hog[:, 3] - mt[:, 0] - mt[:, 2]) / 2, rcond=None)[0][0]
    dy = np.linalg.lstsq(h[:, None], (hog[:, 0] + hog[:, 2] - mt[:, 1] - mt[:, 3]) / 2, rcond=None)[0][0]
    side = (hog[:, 1] - hog[:, 3] + hog[:, 2] - hog[:, 0]) / 2
    sw, sh = np.linalg.lstsq(np.stack([w, h], 1), side, rcond=None)[0]
    return {
        "dx": round(float(dx), 3),
        "dy": round(float(dy), 3),
        "sw": round(float(sw), 3),
        "sh": round(float(sh), 3),
    }
