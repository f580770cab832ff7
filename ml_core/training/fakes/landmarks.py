"""68 dlib landmarks on every frame of a segment, detected now and then and tracked in between.

HOG detection is the slow part (about 0.1 s on a 640 px frame), the shape predictor is not
(a few ms), so the face is detected only every `detect_every` frames on a shrunk copy; in
between, the previous frame's landmarks give the box the shape predictor starts from. The
points are then smoothed over a few frames: dlib's points jitter by a pixel or two from frame
to frame, and a fake pasted along jittering points flickers, which real fakes do not.

A segment is refused, with a reason, when it shows no face, several people of comparable size,
a face too small to manipulate, a face turned away (profile), or loses the face for longer
than a short run of frames.
"""

from dataclasses import dataclass, field

import cv2
import numpy as np

from ml_core.training.sbi import landmarks_from_face_recognition, plausible_landmarks

REASONS = ("no_face", "several_people", "tiny_face", "profile", "landmarks_lost")


@dataclass(frozen=True)
class LandmarkConfig:
    detect_every: int = 5  # frames between HOG detections
    detect_max_side: int = 640  # HOG runs on a copy shrunk to this (with its 2x upsampling)
    min_face: int = 48  # HOG box side (brows to chin, working frame pixels) below which a face is "tiny"
    several_ratio: float = 0.6  # another face this large relative to the main one is a second person
    several_share: float = 0.3  # of detection frames showing a second person, to refuse the clip
    max_nose_offset: float = 0.4  # |nose tip - eye-corner midpoint| / eye-corner distance
    min_jaw_ratio: float = 0.15  # nearer / farther jaw side from the nose
    profile_share: float = 0.2  # of frames turned away, to refuse the clip
    min_frames: int = 16  # shortest usable run of tracked frames
    smooth_window: int = 5  # centred, triangular weights; 1 = no smoothing
    no_face_after: int = 8  # give up after this many detection frames found nothing
    max_jump: float = 0.4  # landmark centre moving more than this x face size between frames = a cut


@dataclass
class FaceTrack:
    """Landmarks for frames `start .. start + len(landmarks)` of a segment, or why there are none."""

    landmarks: np.ndarray | None  # (T, 68, 2) float32, frame pixels (x, y)
    start: int = 0
    reason: str | None = None
    detail: str = ""
    face_side: float = 0.0  # median detected face box side, frame pixels
    stats: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.reason is None


def _box_side(box) -> float:
    top, right, bottom, left = box
    return float(min(right - left, bottom - top))


def detect_faces(image_bgr: np.ndarray, max_side: int) -> list[tuple[int, int, int, int]]:
    """dlib HOG face boxes (top, right, bottom, left) in full-frame pixels, largest first."""
    import face_recognition

    height, width = image_bgr.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    small = (
        image_bgr
        if scale == 1.0
        else cv2.resize(image_bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    )
    rgb = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
    boxes = face_recognition.face_locations(rgb, model="hog")
    boxes = [tuple(int(round(v / scale)) for v in box) for box in boxes]
    return sorted(boxes, key=lambda b: -_box_side(b))


def predict_landmarks(rgb: np.ndarray, box) -> np.ndarray | None:
    """dlib's 68 points inside `box` (top, right, bottom, left), or None when they look wrong."""
    import face_recognition

    found = face_recognition.face_landmarks(rgb, face_locations=[tuple(int(v) for v in box)], model="large")
    if not found:
        return None
    points = landmarks_from_face_recognition(found[0])
    return points if plausible_landmarks(points, box) else None


def points_box(points: np.ndarray) -> tuple[float, float, float, float]:
    """(top, right, bottom, left) of the points' bounding box."""
    x0, y0 = points.min(axis=0)
    x1, y1 = points.max(axis=0)
    return float(y0), float(x1), float(y1), float(x0)


def _relative(box, points) -> np.ndarray:
    """A detector box in units of the landmarks' bounding box, to rebuild it from later points."""
    top, right, bottom, left = points_box(points)
    width, height = max(right - left, 1.0), max(bottom - top, 1.0)
    return np.array(
        [(box[0] - top) / height, (box[1] - left) / width, (box[2] - top) / height, (box[3] - left) / width]
    )


def _tracked_box(points, relative, shape):
    """The box HOG would likely give for `points`: the last detection's box relative to its points."""
    top, right, bottom, left = points_box(points)
    width, height = right - left, bottom - top
    box = (
        top + relative[0] * height,
        left + relative[1] * width,
        top + relative[2] * height,
        left + relative[3] * width,
    )
    limit_h, limit_w = shape[:2]
    return (
        int(round(max(0, box[0]))),
        int(round(min(limit_w - 1, box[1]))),
        int(round(min(limit_h - 1, box[2]))),
        int(round(max(0, box[3]))),
    )


def _iou(a, b) -> float:
    top, right = max(a[0], b[0]), min(a[1], b[1])
    bottom, left = min(a[2], b[2]), max(a[3], b[3])
    inter = max(0, right - left) * max(0, bottom - top)
    return inter / max(_area(a) + _area(b) - inter, 1e-6)


def _area(box) -> float:
    return max(0, box[1] - box[3]) * max(0, box[2] - box[0])


def yaw(points: np.ndarray) -> float:
    """Signed horizontal nose offset: (nose tip - midpoint of the outer eye corners) / their distance.

    About 0 for a frontal face, about +-0.2 for a three-quarter view; the sign says which way.
    """
    outer_left, outer_right, nose = points[36], points[45], points[30]
    eye_distance = max(float(np.linalg.norm(outer_right - outer_left)), 1e-6)
    return float(nose[0] - (outer_left[0] + outer_right[0]) / 2) / eye_distance


def turned_away(points: np.ndarray, config: LandmarkConfig) -> bool:
    """A landmark yaw check: the nose tip far off the eyes' midpoint, or one jaw side much shorter."""
    if float(np.linalg.norm(points[45] - points[36])) < 1:
        return True
    nose = points[30]
    left_side = abs(float(nose[0] - points[2][0]))
    right_side = abs(float(points[14][0] - nose[0]))
    jaw_ratio = min(left_side, right_side) / max(left_side, right_side, 1e-6)
    return abs(yaw(points)) > config.max_nose_offset or jaw_ratio < config.min_jaw_ratio


def smooth(landmarks: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average with triangular weights; the ends use the frames they have."""
    if window <= 1 or len(landmarks) < 2:
        return landmarks.astype(np.float32)
    half = window // 2
    weights = np.array([half + 1 - abs(k) for k in range(-half, half + 1)], np.float64)
    result = np.empty_like(landmarks, dtype=np.float64)
    count = len(landmarks)
    for t in range(count):
        lo, hi = max(0, t - half), min(count, t + half + 1)
        w = weights[lo - t + half : hi - t + half]
        result[t] = np.tensordot(w, landmarks[lo:hi], axes=1) / w.sum()
    return result.astype(np.float32)


def _longest_run(valid: np.ndarray, cuts: np.ndarray) -> tuple[int, int]:
    """(start, length) of the longest run of valid frames that no cut splits."""
    best, start = (0, 0), None
    for index, ok in enumerate(list(valid) + [False]):
        if start is not None and (not ok or cuts[index]):
            if index - start > best[1]:
                best = (start, index - start)
            start = None
        if ok and start is None:
            start = index
    return best


def _jump(points: np.ndarray, previous: np.ndarray) -> float:
    """How far the face moved between two frames, in face sizes."""
    top, right, bottom, left = points_box(previous)
    size = max(right - left, bottom - top, 1.0)
    return float(np.linalg.norm(points.mean(axis=0) - previous.mean(axis=0))) / size


def track_landmarks(frames: list[np.ndarray], config: LandmarkConfig | None = None) -> FaceTrack:
    """Landmarks for the longest well-tracked run of `frames` (BGR), smoothed; or a reason."""
    config = config or LandmarkConfig()
    count = len(frames)
    points = np.full((count, 68, 2), np.nan, np.float32)
    cuts = np.zeros(count + 1, bool)
    last_detection = -1
    previous, relative = None, np.array([-0.1, -0.1, 1.1, 1.1])
    detections = several = empty_detections = 0
    sides = []
    for index, frame in enumerate(frames):
        rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        box, detected = None, False
        if index % config.detect_every == 0:
            faces = detect_faces(frame, config.detect_max_side)
            detections += 1
            if not faces:
                empty_detections += 1
                if not sides and empty_detections >= config.no_face_after:
                    return FaceTrack(None, reason="no_face", detail=f"no face in {detections} detections")
            else:
                main = faces[0]
                if previous is not None:
                    # Follow the person already tracked, not whoever is largest now.
                    main = max(faces, key=lambda b: _iou(b, points_box(previous)))
                comparable = [b for b in faces if _box_side(b) >= config.several_ratio * _box_side(main)]
                several += len(comparable) > 1
                sides.append(_box_side(main))
                box, detected = main, True
        if box is None and previous is not None:
            box = _tracked_box(previous, relative, frame.shape)
        if box is None:
            continue
        found = predict_landmarks(rgb, box)
        if found is None:
            previous = None  # lost: wait for the next detection
            continue
        if previous is not None and _jump(found, previous) > config.max_jump:
            if not detected:
                previous = None  # the tracker slid off the face: wait for the next detection
                continue
            # A scene cut (or another person): the frames tracked since the last detection
            # followed the old face into the new scene, so they are dropped too.
            cuts[index] = True
            points[last_detection + 1 : index] = np.nan
        if detected:
            relative, last_detection = _relative(box, found), index
        points[index], previous = found, found
    stats = {"frames": count, "detections": detections, "several": several}
    if not sides:
        return FaceTrack(None, reason="no_face", detail=f"no face in {detections} detections", stats=stats)
    face_side = float(np.median(sides))
    if several >= max(1, config.several_share * detections):
        return FaceTrack(
            None, reason="several_people", detail=f"{several}/{detections} detections", stats=stats
        )
    if face_side < config.min_face:
        return FaceTrack(None, reason="tiny_face", detail=f"face box {face_side:.0f} px", face_side=face_side)
    valid = np.isfinite(points).all(axis=(1, 2))
    tracked = points[valid]
    away = sum(turned_away(p, config) for p in tracked)
    if away > config.profile_share * max(len(tracked), 1):
        return FaceTrack(
            None, reason="profile", detail=f"{away}/{len(tracked)} frames turned away", stats=stats
        )
    start, length = _longest_run(valid, cuts)
    if length < min(config.min_frames, count):
        return FaceTrack(
            None, reason="landmarks_lost", detail=f"longest tracked run {length}/{count} frames", stats=stats
        )
    stats["tracked"] = int(valid.sum())
    landmarks = smooth(points[start : start + length], config.smooth_window)
    return FaceTrack(landmarks, start=start, face_side=face_side, stats=stats)
