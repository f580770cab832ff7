"""Face detection: dlib's HOG (and CNN) through face_recognition's models, MTCNN for the rest.

Speed without changing the boxes: dlib's HOG detector upsamples the image 2x and then scans a
pyramid that shrinks by 5/6 per level. Full-resolution HOG (what the reference app ran, and
what its checkpoints' crops look like) therefore sees the frame at scales 2 * (5/6)**k. We
detect on a frame resized to one of those same scales (the largest whose longest side fits
`work_max_side`), without upsampling: the detector then scans the same pyramid levels minus
the finest ones, so the boxes mapped back to full resolution agree with full-resolution HOG
(measured IoU in the notes), at a fraction of the cost. The finest levels only find faces
smaller than about 80 px at the working scale; frames where the main face is missing are
retried at a finer scale before being reported missing, and a face found on the finest level
we scan (so it might fit a finer one better, as full-resolution HOG would see) makes the video
move one level finer from that frame on.

Between whole-frame scans, a face seen in the previous sampled frame is looked for only near
where it was, on the pyramid levels that fit its size (`region_search`): the same level images
a whole-frame scan builds, so the same window wins, for a fraction of the cost.

Dark, flat, small and turned faces: HOG misses many faces a person sees at once (a dim room, a
face in profile). MTCNN (facenet-pytorch, weights shipped in its wheel) finds them; its boxes
are mapped onto HOG-like boxes so the crops look like the HOG crops models were
trained on (ml_core.media.mtcnn, ml_core.media.face_calibration). Dark or low-contrast frames
are equalised (CLAHE) on the copy the detectors scan only (`detection_copy`); crops are always cut
from the original frame. Linking faces into people: ml_core.media.face_tracking.
"""

import logging
import math
import threading
from dataclasses import dataclass
from functools import cache

import cv2

from ml_core.media import mtcnn
from ml_core.media.boxes import clamp_box
from ml_core.media.face_calibration import mtcnn_to_hog
from ml_core.media.hog_exact import LevelScan
from ml_core.resizing import interpolation

logger = logging.getLogger(__name__)

PYRAMID_STEP = 5 / 6  # dlib's pyramid_down<6>
# A box found on the first (finest) level we scan is about 72 px wide at the working scale;
# one level coarser it is 86 px. Below this width the face may fit a finer level better.
FINEST_LEVEL_BOX = 80
REGION_REACH = 40  # level px (a face's window is 80): how far a face may move between samples


@dataclass
class Detection:
    box: tuple[int, int, int, int]  # (top, right, bottom, left), full-resolution pixels, clamped
    confidence: float  # HOG: SVM score (> 0 means detected); CNN: MMOD confidence; MTCNN: probability
    source: str = "hog"  # the detector that found it: "hog", "cnn" or "mtcnn"


def aligned_scale(width, height, work_max_side):
    """The largest 2 * (5/6)**k whose resized longest side fits in work_max_side."""
    longest = max(width, height)
    k = max(0, math.ceil(math.log(work_max_side / (2 * longest)) / math.log(PYRAMID_STEP)))
    return 2 * PYRAMID_STEP**k


def found_at_finest_level(detections, scale):
    return any((d.box[1] - d.box[3]) * scale < FINEST_LEVEL_BOX for d in detections)


def all_large(detections, scale):
    """Every face would be found well above the finest level at `scale` (two levels up)."""
    return all((d.box[1] - d.box[3]) * scale >= FINEST_LEVEL_BOX / PYRAMID_STEP**2 for d in detections)


def finer_scale(scale, steps=3):
    """A scale `steps` pyramid levels finer (about 1.7x for 3), capped at dlib's 2x."""
    return min(2.0, scale / PYRAMID_STEP**steps)


_per_thread = threading.local()


def _hog():
    # One detector per thread: concurrent `run` calls on a shared dlib detector abort the process.
    detector = getattr(_per_thread, "hog", None)
    if detector is None:
        import dlib

        detector = _per_thread.hog = dlib.get_frontal_face_detector()
    return detector


@cache
def _cnn():
    import dlib
    import face_recognition_models

    return dlib.cnn_face_detection_model_v1(face_recognition_models.cnn_face_detector_model_location())


def load_detector(name):
    """Load a detector's models now ("hog", "cnn", "mtcnn" or "hog+mtcnn"), before any clock starts."""
    for part in name.split("+"):
        {"hog": _hog, "cnn": _cnn, "mtcnn": mtcnn.load}[part]()


# Frames darker than this mean luma, or flatter than this luma standard deviation, are
# equalised before detection: HOG's gradients and MTCNN's first stage both fade there.
DARK_MEAN_LUMA = 70
FLAT_LUMA_STD = 30


def needs_contrast(image_bgr):
    gray = cv2.cvtColor(image_bgr[::4, ::4], cv2.COLOR_BGR2GRAY)  # every 4th pixel is plenty
    return float(gray.mean()) < DARK_MEAN_LUMA or float(gray.std()) < FLAT_LUMA_STD


@cache
def _clahe():
    return cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))


def detection_copy(image_bgr, contrast="auto"):
    """The frame the detectors scan: dark or flat frames equalised (CLAHE on LAB's L), else as is.

    Only detection sees it: the crops the model gets are cut from the original frame, because
    training cut them from unequalised frames.
    """
    if contrast == "off" or not needs_contrast(image_bgr):
        return image_bgr
    lab = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2LAB)
    lab[:, :, 0] = _clahe().apply(lab[:, :, 0])
    return cv2.cvtColor(lab, cv2.COLOR_LAB2BGR)


MIN_WINDOW = 96  # the face detector's window is 80 x 80 px; a smaller region cannot hold a face


def resized(image_bgr, scale):
    """The frame at `scale` (area averaging when shrinking), as the working-scale scans see it."""
    if scale == 1:
        return image_bgr
    return cv2.resize(image_bgr, None, fx=scale, fy=scale, interpolation=interpolation(scale < 1))


def detect(image_bgr, scale, model="hog", region=None):
    """Faces in a full-resolution BGR frame, detected at `scale`, boxes in full-resolution pixels.

    `region` (a full-resolution box), when given, is cut out first and searched alone.
    """
    height, width = image_bgr.shape[:2]
    top, left = 0, 0
    if region is not None:
        top, right, bottom, left = region
        image_bgr = image_bgr[top:bottom, left:right]
        smallest = 2 * mtcnn.MTCNN_MIN_FACE if model == "mtcnn" else MIN_WINDOW
        if min(image_bgr.shape[:2]) * scale < smallest:
            return []
    rgb = cv2.cvtColor(resized(image_bgr, scale), cv2.COLOR_BGR2RGB)
    if model == "hog":
        rects, scores, _ = _hog().run(rgb, 0, 0.0)
        found = [((r.top(), r.right(), r.bottom(), r.left()), s) for r, s in zip(rects, scores)]
    elif model == "cnn":
        found = [
            ((d.rect.top(), d.rect.right(), d.rect.bottom(), d.rect.left()), d.confidence)
            for d in _cnn()(rgb, 0)
        ]
    elif model == "mtcnn":
        found = [(mtcnn_to_hog(*box), prob) for box, prob in mtcnn.find(rgb)]
    else:
        raise ValueError(f"unknown detector {model!r} (use 'hog', 'cnn' or 'mtcnn')")
    detections = []
    for (t, r, b, l), score in found:  # noqa: E741
        box = (top + t / scale, left + r / scale, top + b / scale, left + l / scale)
        box = clamp_box(tuple(int(round(v)) for v in box), width, height)
        if box[2] - box[0] >= 2 and box[1] - box[3] >= 2:
            detections.append(Detection(box=box, confidence=round(float(score), 4), source=model))
    return detections


def region_search(scan, box, width, height, reach=REGION_REACH):
    """The face nearest `box` (seen in the previous sampled frame) in this frame, or None.

    `scan` is the working-scale pyramid (ml_core.media.hog_exact.LevelScan): the face's window is
    looked for on the levels around its size, within `reach` level pixels (half a face) of
    where it was; the result is the window a whole-frame scan keeps for it.
    """
    top, right, bottom, left = box
    found = scan.search(((left + right) / 2, (top + bottom) / 2), right - left, reach=reach, spread=1.6)
    if found is None:
        return None
    full, score = found
    box = clamp_box(tuple(int(round(v)) for v in full), width, height)
    return Detection(box=box, confidence=round(score, 4))


def working_scan(image_bgr, scale):
    """The pyramid a whole-frame scan at `scale` searches, for region searches (see hog_exact)."""
    small = resized(image_bgr, scale)

    def to_full(rect):
        return rect.top() / scale, rect.right() / scale, rect.bottom() / scale, rect.left() / scale

    return LevelScan(cv2.cvtColor(small, cv2.COLOR_BGR2RGB), scale, to_full)


def search_region(box, width, height, reach=1.0):
    """Where to look for a face seen at `box` in the previous sampled frame.

    `reach` face sizes each way from its centre: the face may move half its size between samples.
    """
    top, right, bottom, left = box
    half = reach * max(bottom - top, right - left)
    cy, cx = (top + bottom) / 2, (left + right) / 2
    return clamp_box(
        (int(cy - half), int(math.ceil(cx + half)), int(math.ceil(cy + half)), int(cx - half)), width, height
    )


# px: a lost face is looked for again at a scale that shows it this big, twice the detector's
# window, so that it is found even if it is now half as big (walking away).
CLOSE_LOOK_FACE_SIZE = 160


def close_look(image_bgr, box, model="hog"):
    """Faces near `box` (a face seen recently, now missing), at a scale that shows it large.

    Distant faces are small: the whole-frame scale misses them where full-resolution HOG
    (upsampled 2x) still finds them. Only the region around where the face was is scanned.
    """
    height, width = image_bgr.shape[:2]
    size = max(box[2] - box[0], box[1] - box[3], 1)
    k = max(0, math.floor(math.log(CLOSE_LOOK_FACE_SIZE / (2 * size)) / math.log(PYRAMID_STEP)))
    scale = 2 * PYRAMID_STEP**k  # the coarsest pyramid-aligned scale showing it that big
    return detect(image_bgr, scale, model, search_region(box, width, height))
