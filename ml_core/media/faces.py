"""Face detection (dlib through face_recognition's models) and linking faces into identities.

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
are mapped onto HOG-like boxes (`MTCNN_TO_HOG`) so the crops look like the HOG crops models were
trained on. Dark or low-contrast frames are equalised (CLAHE) on the copy the detectors scan
only (`detection_copy`); crops are always cut from the original frame.
"""

import logging
import math
import threading
from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

from ml_core.media.hog_exact import LevelScan

logger = logging.getLogger(__name__)

PYRAMID_STEP = 5 / 6  # dlib's pyramid_down<6>
# A box found on the first (finest) level we scan is about 72 px wide at the working scale;
# one level coarser it is 86 px. Below this width the face may fit a finer level better.
FINEST_LEVEL_BOX = 80
ENCODING_TOLERANCE = 0.6  # face_recognition's default distance for "same person"
LINK_IOU = 0.3
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


MTCNN_MIN_PROBABILITY = 0.9
MTCNN_MIN_FACE = 20  # px at the working scale: MTCNN's smallest face (its own default)
# HOG-like box from an MTCNN box (x1, y1, x2, y2), width w and height h: HOG's boxes are square
# (MTCNN's are 0.74 as wide as tall), a little lower and wider than MTCNN's width:
#   centre x += dx * w, centre y += dy * h, side = sw * w + sh * h
# Least squares (`fit_mtcnn_to_hog`) over 169 pairs of boxes on 38 clips of the shared folders,
# frames where both found the same single face (`python -m ml_core.cli.bench --fit-mtcnn FOLDER`).
# IoU with HOG's box: median 0.81 (0.75 unmapped); HOG's own boxes step 1.2x between levels.
MTCNN_TO_HOG = {"dx": 0.008, "dy": 0.054, "sw": 1.244, "sh": -0.122}


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


@cache
def _mtcnn():
    # CPU: the classifier owns the GPU, and MTCNN runs only where HOG found nothing. The three
    # networks' weights are in facenet-pytorch's wheel (facenet_pytorch/data): nothing downloads.
    from facenet_pytorch import MTCNN
    from facenet_pytorch.models.utils import detect_face

    detect_face.imresample = _area_resize
    # A stricter first stage (0.7, not 0.6) keeps equalised noise from feeding hundreds of
    # candidates to the later stages; faces score far above it.
    return MTCNN(
        keep_all=True,
        device="cpu",
        min_face_size=MTCNN_MIN_FACE,
        thresholds=[0.7, 0.7, 0.7],
        post_process=False,
    )


def mtcnn_to_hog(x1, y1, x2, y2, mapping=None):
    """An MTCNN box as the (top, right, bottom, left) box HOG would give the same face."""
    m = mapping or MTCNN_TO_HOG
    w, h = x2 - x1, y2 - y1
    cx, cy = (x1 + x2) / 2 + m["dx"] * w, (y1 + y2) / 2 + m["dy"] * h
    half = (m["sw"] * w + m["sh"] * h) / 2
    return cy - half, cx + half, cy + half, cx - half


def fit_mtcnn_to_hog(pairs):
    """MTCNN_TO_HOG from [(hog (top, right, bottom, left), mtcnn (x1, y1, x2, y2))], least squares."""
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


def _mtcnn_found(rgb):
    found = _mtcnn_detect(rgb)
    if found:
        return found
    # Faces cut by the frame edge or filling it (face-crop clips, close-ups, a turned head at the
    # border) give MTCNN's proposal stage no margin to slide over; a black border gives it one.
    # Only on a miss, so a face found without the border keeps its box (measured on DFDC
    # acdkfksyev: 17 -> 19 of 20 sampled frames).
    pad = max(rgb.shape[:2]) // 4
    padded = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_CONSTANT)
    return [(box - pad, prob) for box, prob in _mtcnn_detect(padded)]


def _mtcnn_detect(rgb):
    import torch

    # One thread: MTCNN's small convolutions gain nothing from more, and on a busy machine
    # torch's thread pool waits for the slowest core (1 thread: 0.07 s per 640x360 frame; 2
    # threads next to a training job: 0.97 s).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        boxes, probs = _mtcnn().detect(rgb)
    finally:
        torch.set_num_threads(threads)
    if boxes is None:
        return []
    return [(box, prob) for box, prob in zip(boxes, probs) if prob >= MTCNN_MIN_PROBABILITY]


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


def clamp_box(box, width, height):
    top, right, bottom, left = box
    top, bottom = max(0, min(height, top)), max(0, min(height, bottom))
    left, right = max(0, min(width, left)), max(0, min(width, right))
    return top, right, bottom, left


MIN_WINDOW = 96  # the face detector's window is 80 x 80 px; a smaller region cannot hold a face


def resized(image_bgr, scale):
    """The frame at `scale` (area averaging when shrinking), as the working-scale scans see it."""
    if scale == 1:
        return image_bgr
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(image_bgr, None, fx=scale, fy=scale, interpolation=interpolation)


def detect(image_bgr, scale, model="hog", region=None):
    """Faces in a full-resolution BGR frame, detected at `scale`, boxes in full-resolution pixels.

    `region` (a full-resolution box), when given, is cut out first and searched alone.
    """
    height, width = image_bgr.shape[:2]
    top, left = 0, 0
    if region is not None:
        top, right, bottom, left = region
        image_bgr = image_bgr[top:bottom, left:right]
        smallest = 2 * MTCNN_MIN_FACE if model == "mtcnn" else MIN_WINDOW
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
        found = [(mtcnn_to_hog(*box), prob) for box, prob in _mtcnn_found(rgb)]
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


def iou(a, b):
    top, left = max(a[0], b[0]), max(a[3], b[3])
    bottom, right = min(a[2], b[2]), min(a[1], b[1])
    inter = max(0, bottom - top) * max(0, right - left)
    union = box_area(a) + box_area(b) - inter
    return inter / union if union > 0 else 0.0


def _nearby(box, previous):
    """Similar size (within 1.6x) and centres within two face widths."""
    width, prev_width = box[1] - box[3], previous[1] - previous[3]
    if not 1 / 1.6 <= width / max(prev_width, 1) <= 1.6:
        return False
    dx = (box[1] + box[3] - previous[1] - previous[3]) / 2
    dy = (box[0] + box[2] - previous[0] - previous[2]) / 2
    return (dx * dx + dy * dy) ** 0.5 < 2 * max(width, prev_width)


def box_area(box):
    return max(0, box[2] - box[0]) * max(0, box[1] - box[3])


def encoding_chip(image_bgr, box, side=160):
    """A small RGB patch around a face and the face's box in it, enough to compute an encoding later.

    Keeping this instead of the frame lets tracking run while frames stream past.
    """
    height, width = image_bgr.shape[:2]
    top, right, bottom, left = box
    pad = int(0.3 * max(bottom - top, right - left))
    t, r, b, l = clamp_box((top - pad, right + pad, bottom + pad, left - pad), width, height)  # noqa: E741
    patch = image_bgr[t:b, l:r]
    factor = min(1.0, side / max(1, bottom - top + 2 * pad))
    if factor < 1:
        patch = cv2.resize(patch, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
    inner = tuple(int(round(v * factor)) for v in (top - t, right - l, bottom - t, left - l))
    return cv2.cvtColor(patch, cv2.COLOR_BGR2RGB), inner


@cache
def _encoder():
    # face_recognition's own models, loaded directly: importing face_recognition would also
    # load its 68-point and CNN models (~1.5 s) that tracking does not need.
    import dlib
    import face_recognition_models as models

    return (
        dlib.shape_predictor(models.pose_predictor_five_point_model_location()),
        dlib.face_recognition_model_v1(models.face_recognition_model_location()),
    )


def face_encoding(chip):
    """face_recognition's 128-d encoding (5-point alignment, as its model="small") of a chip."""
    import dlib

    rgb, (top, right, bottom, left) = chip
    predictor, encoder = _encoder()
    shape = predictor(rgb, dlib.rectangle(left, top, right, bottom))
    return np.array(encoder.compute_face_descriptor(rgb, shape, 1))


@dataclass
class Track:
    id: int
    last_box: tuple[int, int, int, int]
    last_chip: tuple | None = None
    encoding: np.ndarray | None = None
    encoding_at: int = -1  # the appearance the cached encoding belongs to
    appearances: int = 0


class Tracker:
    """Links each sampled frame's detections to identities, online, as frames stream past.

    First by box overlap with each identity's last box (faces move little between nearby
    samples); a detection that overlaps nothing is compared by face encoding with the identities
    not seen in this frame (a track "breaks" when samples are far apart or the person moved).
    Encodings are computed only in that case, since they cost ~75 ms per face.
    """

    def __init__(self):
        self.tracks: list[Track] = []
        self.encodings_computed = 0

    def _encode(self, chip):
        self.encodings_computed += 1
        return face_encoding(chip)

    def _track_encoding(self, track):
        # One encoding per identity is enough (and refreshed for free when a break is bridged).
        if track.encoding_at < 0 and track.last_chip is not None:
            track.encoding = self._encode(track.last_chip)
            track.encoding_at = track.appearances
        return track.encoding

    def update(self, image_bgr, detections):
        """Return the identity id of each detection (same order)."""
        ids = [None] * len(detections)
        free = set(range(len(self.tracks)))
        pairs = sorted(
            (
                (iou(d.box, t.last_box), di, ti)
                for di, d in enumerate(detections)
                for ti, t in enumerate(self.tracks)
            ),
            reverse=True,
        )
        for overlap, di, ti in pairs:
            if overlap < LINK_IOU:
                break
            if ids[di] is None and ti in free:
                ids[di] = ti
                free.discard(ti)
        unmatched = [di for di in range(len(detections)) if ids[di] is None]
        if len(unmatched) == 1 and len(free) == 1 and len(detections) == 1:
            # One face left, one identity unseen, nobody else in the frame: the same person
            # moving is far likelier than a swap, if it stayed near and kept its size.
            ti = next(iter(free))
            if _nearby(detections[unmatched[0]].box, self.tracks[ti].last_box):
                ids[unmatched[0]] = ti
                free.discard(ti)
        chips = {di: encoding_chip(image_bgr, d.box) for di, d in enumerate(detections)}
        encodings = {}
        unmatched = [di for di in range(len(detections)) if ids[di] is None]
        if unmatched and free:
            candidates = []
            for di in unmatched:
                encodings[di] = self._encode(chips[di])
                if encodings[di] is None:
                    continue
                for ti in free:
                    known = self._track_encoding(self.tracks[ti])
                    if known is not None:
                        distance = float(np.linalg.norm(known - encodings[di]))
                        if distance < ENCODING_TOLERANCE:
                            candidates.append((distance, di, ti))
            for _, di, ti in sorted(candidates):
                if ids[di] is None and ti in free:
                    ids[di] = ti
                    free.discard(ti)
        for di, det in enumerate(detections):
            if ids[di] is None:
                self.tracks.append(Track(id=len(self.tracks), last_box=det.box))
                ids[di] = len(self.tracks) - 1
            track = self.tracks[ids[di]]
            track.last_box = det.box
            track.appearances += 1
            # A small patch, so the encoding can be computed later if this track breaks.
            track.last_chip = chips[di]
            if encodings.get(di) is not None:
                track.encoding, track.encoding_at = encodings[di], track.appearances
        return ids
