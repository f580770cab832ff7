"""Frames for the fakes' tests: a face placed or moved on a plain frame, its landmarks moved with it."""

import cv2
import numpy as np


def place(patch, size=(320, 240), at=(80, 0)):
    """`patch` on a grey frame of `size` (width, height) with its corner at `at` (x, y)."""
    frame = np.full((size[1], size[0], 3), 110, np.uint8)
    x, y = at
    frame[y : y + patch.shape[0], x : x + patch.shape[1]] = patch
    return frame


def shifted(frame, points, dx, dy):
    """The frame moved by (dx, dy) pixels (edges replicated) and its landmarks moved with it."""
    matrix = np.float32([[1, 0, dx], [0, 1, dy]])
    moved = cv2.warpAffine(frame, matrix, frame.shape[1::-1], borderMode=cv2.BORDER_REPLICATE)
    return moved, points + np.float32([dx, dy])
