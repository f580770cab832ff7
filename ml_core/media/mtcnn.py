"""MTCNN (facenet-pytorch, weights shipped in its wheel), for the faces HOG misses.

Its boxes are in MTCNN's own geometry; ml_core.media.face_calibration maps them onto HOG-like
boxes.
"""

import threading
from contextlib import contextmanager
from functools import cache

import cv2
import numpy as np

MTCNN_MIN_PROBABILITY = 0.9
MTCNN_MIN_FACE = 20  # px at the working scale: MTCNN's smallest face (its own default)


def _area_resize(images, size):
    """facenet-pytorch's `imresample` (torch "area" interpolation) with OpenCV's INTER_AREA.

    Torch's area mode is an adaptive average pool: ~6 ms per candidate face on CPU, hundreds of
    candidates per dark frame (90% of MTCNN's time). OpenCV does the same averaging in ~0.1 ms.
    """
    import torch

    height, width = size
    arrays = images.permute(0, 2, 3, 1).cpu().numpy()
    out = [
        cv2.resize(a, (width, height), interpolation=cv2.INTER_AREA).reshape(height, width, -1)
        for a in arrays
    ]
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).to(images.device)


_resampling_lock = threading.Lock()


@contextmanager
def _area_resampling():
    """facenet-pytorch resizes every candidate with its module-level `imresample`: ours is swapped
    in for our own calls only (under a lock, restored after), so the rest of the process keeps the
    library as shipped."""
    from facenet_pytorch.models.utils import detect_face

    with _resampling_lock:
        shipped = detect_face.imresample
        detect_face.imresample = _area_resize
        try:
            yield
        finally:
            detect_face.imresample = shipped


@cache
def _mtcnn():
    # CPU: the classifier owns the GPU, and MTCNN runs only where HOG found nothing. The three
    # networks' weights are in facenet-pytorch's wheel (facenet_pytorch/data): nothing downloads.
    from facenet_pytorch import MTCNN

    # A stricter first stage (0.7, not 0.6) keeps equalised noise from feeding hundreds of
    # candidates to the later stages; faces score far above it.
    return MTCNN(
        keep_all=True,
        device="cpu",
        min_face_size=MTCNN_MIN_FACE,
        thresholds=[0.7, 0.7, 0.7],
        post_process=False,
    )


def find(rgb):
    """[(box (x1, y1, x2, y2), probability)] of the faces MTCNN is sure of, in `rgb`'s pixels."""
    found = _detect(rgb)
    if found:
        return found
    # Faces cut by the frame edge or filling it (face-crop clips, close-ups, a turned head at the
    # border) give MTCNN's proposal stage no margin to slide over; a black border gives it one.
    # Only on a miss, so a face found without the border keeps its box (measured on DFDC
    # acdkfksyev: 17 -> 19 of 20 sampled frames).
    pad = max(rgb.shape[:2]) // 4
    padded = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_CONSTANT)
    return [(box - pad, prob) for box, prob in _detect(padded)]


def _detect(rgb):
    import torch

    # One thread: MTCNN's small convolutions gain nothing from more, and on a busy machine
    # torch's thread pool waits for the slowest core (1 thread: 0.07 s per 640x360 frame; 2
    # threads next to a training job: 0.97 s).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with _area_resampling():
            boxes, probs = _mtcnn().detect(rgb)
    finally:
        torch.set_num_threads(threads)
    if boxes is None:
        return []
    return [(box, prob) for box, prob in zip(boxes, probs) if prob >= MTCNN_MIN_PROBABILITY]


def load():
    """The detector, loaded once (its three small networks)."""
    return _mtcnn()
