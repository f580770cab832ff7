"""Linking the faces of sampled frames into identities, online, as frames stream past."""

from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

from ml_core.media.boxes import clamp_box, iou

ENCODING_TOLERANCE = 0.6  # face_recognition's default distance for "same person"
LINK_IOU = 0.3


def _nearby(box, previous):
    """Similar size (within 1.6x) and centres within two face widths."""
    width, prev_width = box[1] - box[3], previous[1] - previous[3]
    if not 1 / 1.6 <= width / max(prev_width, 1) <= 1.6:
        return False
    dx = (box[1] + box[3] - previous[1] - previous[3]) / 2
    dy = (box[0] + box[2] - previous[0] - previous[2]) / 2
    return (dx * dx + dy * dy) ** 0.5 < 2 * max(width, prev_width)


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


def load_encoder():
    """Load the encoding models now, before any clock starts."""
    _encoder()


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
