"""The box full-resolution dlib HOG would give a face we already found: exactly, for a price.

The reference app ran `face_recognition.face_locations(frame)` = dlib's frontal face detector
with one upsampling, and its checkpoints were trained on those boxes. That detector scans a
pyramid: the RGB frame resized bilinearly (align-corners) to (2H+1, 2W+2), then levels made by
repeated `pyramid_down<6>`, each scanned with five 80x80-px HOG filters on an 8-px cell grid;
the best-scoring window of overlapping ones wins, and it is mapped back with the pyramid's own
`rect_up` and `pyramid_down<2>.rect_down`. Any other image (cv2's resize, a crop resampled
directly) shifts scores enough that a near-tie between two levels, or two cell rows, flips in
about one box in six: IoU 0.7-0.8 instead of 1.

So, for one frame, `ExactBoxes` builds those level images with dlib's own C++ (only as deep as
the faces need) and, for each face, scans a cell-aligned crop around it on the two or three
levels whose window fits its size, with a copy of the detector that scans one level and keeps
every window (no non-max suppression). The best window near the face is the one full-resolution
HOG keeps. Measured (`python -m ml_core.cli.bench --boxes exact --iou`): IoU 1.000 on 290 of 291
boxes over 13 clips (min 0.961), for ~75 ms per 720p frame and ~145 ms per 1080p frame (mostly
the pyramid), versus ~250 / ~550 ms for full-resolution HOG itself.

`LevelScan` is the same search on any pyramid dlib would build: ml_core.media.faces uses it on the
working-scale frame, so a face looked for near its last place gets the box a whole-frame scan
at that scale would give it.
"""

import logging
import math
import os
import tempfile
import threading

import cv2
import numpy as np

logger = logging.getLogger(__name__)

WINDOW, CELL = 80, 8  # the frontal face detector's window and HOG cell, in level pixels
SEARCH = 16  # how far (level px) the window centre may be from the rough box's centre
MARGIN = 24  # extra crop so the kept windows' features equal the full level's (>= 2 cells)
SPREAD = 2.1  # levels tried around the one the rough box's size suggests (1.5 missed a face)
LEVEL_BIAS = 0.6  # full-res boxes found on level l are about 0.85 * 80 * 1.2**l / 2 px wide
MIN_LEVEL_SIDE = 64  # scan_fhog_pyramid stops before a level smaller than this

_per_thread = threading.local()


class ExactBoxUnavailable(RuntimeError):
    """This dlib build's detector could not be adapted; boxes stay as detected."""


def _skip_int(data, i):
    # dlib serializes integers as one byte (sign bit + byte count) followed by the bytes.
    return i + 1 + (data[i] & 0x0F)


def _single_level_detector():
    """dlib's frontal face detector, changed (in its serialized form) to scan one pyramid level
    and to keep every window: nothing overlaps "more than" 1.0, so non-max suppression is off."""
    import dlib

    fd, path = tempfile.mkstemp(suffix=".svm")
    os.close(fd)
    try:
        dlib.get_frontal_face_detector().save(path)
        with open(path, "rb") as fh:
            data = fh.read()
        i = 0
        for _ in range(8):  # versions, feature extractor, cell size, padding, window size
            i = _skip_int(data, i)
        if data[i : i + 3] != b"\x02\xe8\x03":  # max_pyramid_levels == 1000
            raise ExactBoxUnavailable("unexpected layout of the serialized frontal face detector")
        j = i + 3
        for _ in range(5):  # min level width, height, nuclear norm (mantissa, exponent), dims
            j = _skip_int(data, j)
        k = j
        for _ in range(4):  # box overlap test: IoU and "covered" thresholds (mantissa, exponent)
            k = _skip_int(data, k)
        one = b"\x01\x01\x01\x00"  # the double 1.0
        with open(path, "wb") as fh:
            fh.write(data[:i] + b"\x01\x01" + data[i + 3 : j] + one + one + data[k:])
        return dlib.fhog_object_detector(path)
    finally:
        os.unlink(path)


def _detector():
    # One per thread, like ml_core.media.faces: concurrent runs on one dlib detector abort.
    detector = getattr(_per_thread, "detector", None)
    if detector is None:
        detector = _per_thread.detector = _single_level_detector()
    return detector


class LevelScan:
    """An image pyramid exactly as dlib's HOG scan builds it from `base` (levels by
    `pyramid_down<6>`, built lazily, only as deep as asked), searched one face at a time.

    `to_full` maps a dlib rectangle on `base` to a full-resolution (top, right, bottom, left).
    A search scans, on the two or three levels whose window fits the face's size, only a
    cell-aligned crop around it, with a detector that keeps every window: the best one near the
    face is the window a scan of the whole pyramid keeps for it.
    """

    def __init__(self, base_rgb, base_per_full, to_full):
        import dlib

        self._dlib = dlib
        self._down = dlib.pyramid_down(6)
        self._base = base_rgb
        self._base_per_full = base_per_full  # base pixels per full-resolution pixel
        self._to_full = to_full
        self.sizes = [base_rgb.shape[:2]]  # (rows, cols) of each level
        while True:
            rows, cols = self.sizes[-1]
            down = self._down.rect_down(dlib.rectangle(0, 0, cols - 1, rows - 1))
            if down.width() < MIN_LEVEL_SIDE or down.height() < MIN_LEVEL_SIDE:
                break
            self.sizes.append((5 * rows // 6, 5 * cols // 6))
        self._levels = [base_rgb]

    def _level(self, index):
        while len(self._levels) <= index:
            self._levels.append(self._down(self._levels[-1]))
        return self._levels[index]

    def search(self, centre, width, reach=SEARCH, spread=SPREAD):
        """(box, score) of the best window near a face of `width` full-res px centred at `centre`
        (x, y in full-resolution pixels), within `reach` level pixels; None if none scores >= 0."""
        dlib = self._dlib
        expected = math.log(max(width * self._base_per_full, 1) / WINDOW) / math.log(1.2) + LEVEL_BIAS
        levels = [lv for lv in range(len(self.sizes)) if abs(lv - expected) <= spread]
        if not levels:
            levels = [min(len(self.sizes) - 1, max(0, int(round(expected))))]
        half = WINDOW // 2 + reach + MARGIN
        base_centre = self._base_point(centre)
        best = None
        for level in levels:
            c = self._down.point_down(base_centre, level) if level else base_centre
            rows, cols = self.sizes[level]
            x0 = max(0, math.floor((c.x - half) / CELL) * CELL)
            y0 = max(0, math.floor((c.y - half) / CELL) * CELL)
            x1, y1 = min(cols, math.ceil(c.x + half)), min(rows, math.ceil(c.y + half))
            if x1 - x0 < WINDOW or y1 - y0 < WINDOW:
                continue
            crop = np.ascontiguousarray(self._level(level)[y0:y1, x0:x1])
            rects, scores, _ = _detector().run(crop, 0, -0.5)
            for rect, score in zip(rects, scores):
                cx = (rect.left() + rect.right()) / 2 + x0
                cy = (rect.top() + rect.bottom()) / 2 + y0
                if abs(cx - c.x) > reach + CELL / 2 or abs(cy - c.y) > reach + CELL / 2:
                    continue  # too near the crop's edge for its features to be exact
                if best is None or score > best[0]:
                    best = (score, dlib.translate_rect(rect, dlib.point(x0, y0)), level)
        if best is None or best[0] < 0:
            return None
        score, rect, level = best
        return self._to_full(self._down.rect_up(rect, level) if level else rect), float(score)

    def _base_point(self, centre):
        return self._dlib.dpoint(centre[0] * self._base_per_full, centre[1] * self._base_per_full)


class ExactBoxes(LevelScan):
    """Full-resolution HOG's own pyramid for one frame: the (2H+1, 2W+2) bilinear upsample."""

    def __init__(self, frame_bgr):
        import dlib

        rgb = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)
        height, width = rgb.shape[:2]
        up = dlib.pyramid_down(2)  # pyramid_up's mapping, used in reverse

        def to_full(rect):
            full = up.rect_down(rect)
            return full.top(), full.right(), full.bottom(), full.left()

        super().__init__(dlib.resize_image(rgb, 2 * height + 1, 2 * width + 2), 2.0, to_full)
        self._up = up

    def _base_point(self, centre):
        return self._up.point_up(self._dlib.dpoint(*centre))

    def refine(self, box):
        """(box, score) full-resolution HOG gives the face at `box`, or None if it would miss it.

        Boxes are (top, right, bottom, left) in full-resolution pixels, like face_recognition's.
        """
        top, right, bottom, left = box
        return self.search(((left + right) / 2, (top + bottom) / 2), right - left)


_unavailable = []  # why this dlib build cannot give exact boxes, once found out


def available():
    """Whether this dlib build can give exact boxes (and region searches on exact levels)."""
    if _unavailable:
        return False
    try:
        _detector()
    except ExactBoxUnavailable as exc:
        _unavailable.append(str(exc))
        logger.warning("exact face boxes unavailable, using the fast ones: %s", exc)
        return False
    return True
