"""Self-blended images: synthetic fakes made from real face crops alone.

The idea is from Shiohara & Yamasaki, "Detecting Deepfakes with Self-Blended Images" (CVPR
2022): take a real face, make a slightly altered copy of it (colour, sharpness, a small change
of scale and position) and blend that copy back onto the original inside a soft mask around
the face. The result carries the traces every face swap leaves (a blending boundary, colour
and sharpness mismatch, slight misalignment) without any identity or expression change, so a
detector trained on it cannot learn a shortcut specific to one manipulation method.

Here the target (the background the copy is pasted onto) is always the untouched input, so the
output differs from the input only where the mask is non-zero. The mask comes from the 68
facial landmarks (convex hull, randomly deformed, blurred); when no landmarks were found it is
an ellipse inside the face box, and `SelfBlend.used_landmarks` says which one was used.

Random choices are drawn once per clip (`sample_params`) so every frame of a clip is altered
the same way and the fake does not flicker from frame to frame.
"""

from dataclasses import dataclass

import cv2
import numpy as np

# face_recognition's landmark dict, in the order of dlib's 68-point model (0-based indices).
LANDMARK_GROUPS = (
    "chin",
    "left_eyebrow",
    "right_eyebrow",
    "nose_bridge",
    "nose_tip",
    "left_eye",
    "right_eye",
    "top_lip",
    "bottom_lip",
)


@dataclass(frozen=True)
class SBIConfig:
    max_shift: float = 0.03  # translation, fraction of the crop side
    scale_range: tuple[float, float] = (0.95, 1.05)
    hull_scale_range: tuple[float, float] = (0.9, 1.1)  # mask grows/shrinks around the face centre
    landmark_jitter: float = 0.02  # per-point deformation of the hull, fraction of the crop side
    colour_shift: float = 20.0  # max per-channel shift (0..255 scale)
    hue_shift: float = 8.0  # OpenCV hue units (0..180)
    saturation_shift: float = 25.0
    brightness_contrast: float = 0.1
    blend_ratios: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)


@dataclass(frozen=True)
class SBIParams:
    """Random choices for one clip (shared by its frames)."""

    colour: tuple[float, float, float]
    hue: float
    saturation: float
    brightness: float
    contrast: float
    sharpness: str  # "sharpen" | "blur" | "resample" | "none"
    sharpness_amount: float
    scale: tuple[float, float]
    shift: tuple[float, float]
    hull_scale: tuple[float, float]
    jitter: np.ndarray  # (68, 2) in fractions of the crop side
    blur_inner: int  # odd kernel sizes, as fractions of 112 px
    blur_outer: int
    blend_ratio: float
    ellipse: tuple[float, float, float, float]  # centre x/y and half axes, fractions of the side


@dataclass
class SelfBlend:
    image: np.ndarray  # (H, W, 3) uint8 BGR: the synthetic fake
    mask: np.ndarray  # (H, W) float32 in [0, 1]: blend weight of the altered copy
    used_landmarks: bool


def landmarks_from_face_recognition(groups: dict) -> np.ndarray:
    """face_recognition's dict of named points -> (68, 2) float32 in dlib's order.

    face_recognition lists the lips as two 12-point outlines sharing points; dlib's order is the
    outer lip 48-59 then the inner lip 60-67.
    """
    top, bottom = groups["top_lip"], groups["bottom_lip"]
    points = []
    for name in LANDMARK_GROUPS[:7]:
        points.extend(groups[name])
    points.extend(top[:7])  # 48-54
    points.extend(bottom[1:6])  # 55-59
    points.extend([top[11], top[10], top[9], top[8], top[7]])  # 60-64
    points.extend([bottom[10], bottom[9], bottom[8]])  # 65-67
    result = np.asarray(points, dtype=np.float32)
    if result.shape != (68, 2):
        raise ValueError(f"expected 68 landmarks, got {result.shape}")
    return result


def full_box(shape) -> tuple[float, float, float, float]:
    """The whole crop as a (top, right, bottom, left) face box (crops made with no margin)."""
    return (0.0, float(shape[1]), float(shape[0]), 0.0)


def detect_landmarks(crop: np.ndarray, face_box=None, upscale: int = 2) -> np.ndarray | None:
    """68 landmarks (x, y) in crop pixels for a BGR face crop, or None when they look wrong.

    `face_box` (top, right, bottom, left) is where the detected face lies in the crop; the whole
    crop when the crop was made without a margin. dlib's shape predictor always returns points;
    they are rejected when most fall outside the face box or their hull covers a small part of
    it (no real face there).
    """
    import face_recognition

    height, width = crop.shape[:2]
    top, right, bottom, left = face_box or full_box(crop.shape)
    rgb = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)
    if upscale > 1:
        rgb = cv2.resize(rgb, (width * upscale, height * upscale), interpolation=cv2.INTER_CUBIC)
    location = tuple(int(round(v * upscale)) for v in (top, right, bottom, left))
    found = face_recognition.face_landmarks(rgb, face_locations=[location], model="large")
    if not found:
        return None
    points = landmarks_from_face_recognition(found[0]) / upscale
    return points if plausible_landmarks(points, face_box or full_box(crop.shape)) else None


def plausible_landmarks(points: np.ndarray, face_box) -> bool:
    top, right, bottom, left = face_box
    width, height = right - left, bottom - top
    if not np.isfinite(points).all() or width <= 0 or height <= 0:
        return False
    inside = (points[:, 0] >= left - 0.15 * width) & (points[:, 0] <= right + 0.15 * width)
    inside &= (points[:, 1] >= top - 0.15 * height) & (points[:, 1] <= bottom + 0.15 * height)
    hull_area = cv2.contourArea(cv2.convexHull(points.astype(np.float32)))
    return inside.mean() > 0.9 and hull_area > 0.15 * width * height


def sample_params(rng: np.random.Generator, config: SBIConfig | None = None) -> SBIParams:
    config = config or SBIConfig()
    odd = [k for k in range(5, 27, 2)]
    inner, outer = int(rng.choice(odd)), int(rng.choice(odd))
    return SBIParams(
        colour=tuple(float(v) for v in rng.uniform(-config.colour_shift, config.colour_shift, 3)),
        hue=float(rng.uniform(-config.hue_shift, config.hue_shift)),
        saturation=float(rng.uniform(-config.saturation_shift, config.saturation_shift)),
        brightness=float(rng.uniform(-config.brightness_contrast, config.brightness_contrast)),
        contrast=float(rng.uniform(-config.brightness_contrast, config.brightness_contrast)),
        sharpness=str(rng.choice(["sharpen", "blur", "resample", "none"])),
        sharpness_amount=float(rng.uniform(0.3, 1.0)),
        scale=tuple(float(v) for v in rng.uniform(*config.scale_range, 2)),
        shift=tuple(float(v) for v in rng.uniform(-config.max_shift, config.max_shift, 2)),
        hull_scale=tuple(float(v) for v in rng.uniform(*config.hull_scale_range, 2)),
        jitter=rng.uniform(-config.landmark_jitter, config.landmark_jitter, (68, 2)).astype(np.float32),
        blur_inner=inner,
        blur_outer=outer,
        blend_ratio=float(rng.choice(config.blend_ratios)),
        ellipse=(
            float(rng.uniform(0.45, 0.55)),
            float(rng.uniform(0.5, 0.55)),
            float(rng.uniform(0.3, 0.4)),
            float(rng.uniform(0.36, 0.44)),
        ),
    )


def _alter(crop: np.ndarray, params: SBIParams) -> np.ndarray:
    """The source copy: colour, sharpness, then scale and position changes."""
    height, width = crop.shape[:2]
    image = crop.astype(np.float32)
    image = image * (1 + params.contrast) + 255 * params.brightness + np.asarray(params.colour, np.float32)
    image = np.clip(image, 0, 255).astype(np.uint8)
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + params.hue) % 180
    hsv[..., 1] = np.clip(hsv[..., 1] + params.saturation, 0, 255)
    image = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR)
    if params.sharpness == "sharpen":
        blurred = cv2.GaussianBlur(image, (0, 0), 1.0)
        image = cv2.addWeighted(image, 1 + params.sharpness_amount, blurred, -params.sharpness_amount, 0)
    elif params.sharpness == "blur":
        image = cv2.GaussianBlur(image, (0, 0), 0.3 + params.sharpness_amount)
    elif params.sharpness == "resample":
        factor = 1 - 0.5 * params.sharpness_amount
        small = cv2.resize(image, (max(8, int(width * factor)), max(8, int(height * factor))))
        image = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    sx, sy = params.scale
    matrix = np.array(
        [
            [sx, 0, (1 - sx) * width / 2 + params.shift[0] * width],
            [0, sy, (1 - sy) * height / 2 + params.shift[1] * height],
        ],
        np.float32,
    )
    return cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_REFLECT)


def _kernel(fraction_of_112: int, side: int) -> int:
    size = max(3, int(round(fraction_of_112 * side / 112)))
    return size if size % 2 else size + 1


def landmark_mask(shape, landmarks: np.ndarray, params: SBIParams) -> np.ndarray:
    """Soft mask from the deformed convex hull of the landmarks; (H, W) float32 in [0, 1]."""
    height, width = shape[:2]
    points = landmarks.astype(np.float32) + params.jitter * np.array([width, height], np.float32)
    centre = points.mean(axis=0)
    points = centre + (points - centre) * np.asarray(params.hull_scale, np.float32)
    hull = cv2.convexHull(points.round().astype(np.int32))
    hard = np.zeros((height, width), np.float32)
    cv2.fillConvexPoly(hard, hull, 1.0)
    return _soften(hard, params)


def ellipse_mask(shape, params: SBIParams, face_box=None) -> np.ndarray:
    """Fallback when no landmarks were found: an ellipse inside the face box (default: the crop)."""
    height, width = shape[:2]
    top, right, bottom, left = face_box or full_box(shape)
    box_w, box_h = right - left, bottom - top
    cx, cy, ax, ay = params.ellipse
    hard = np.zeros((height, width), np.float32)
    cv2.ellipse(
        hard,
        (int(round(left + cx * box_w)), int(round(top + cy * box_h))),
        (max(1, int(round(ax * box_w))), max(1, int(round(ay * box_h)))),
        0,
        0,
        360,
        1.0,
        -1,
    )
    return _soften(hard, params)


def _soften(hard: np.ndarray, params: SBIParams) -> np.ndarray:
    """Blur, keep only the fully-inside part, blur again: a soft edge that stays inside the hull."""
    side = max(hard.shape)
    inner = _kernel(params.blur_inner, side)
    outer = _kernel(params.blur_outer, side)
    mask = cv2.GaussianBlur(hard, (inner, inner), 0)
    mask[mask < 0.999] = 0  # erode by about half the kernel
    if not mask.any():
        mask = hard  # a very small hull: keep it rather than blend nothing
    mask = cv2.GaussianBlur(mask, (outer, outer), 0)
    mask /= max(float(mask.max()), 1e-6)
    mask[hard == 0] = 0  # never reach outside the face region
    return mask * params.blend_ratio


def self_blend(crop: np.ndarray, landmarks: np.ndarray | None, params: SBIParams, face_box=None) -> SelfBlend:
    """One self-blended fake from one BGR uint8 crop (H, W, 3); `face_box` is for the fallback mask."""
    if landmarks is not None and np.isfinite(landmarks).all():
        mask, used = landmark_mask(crop.shape, landmarks, params), True
    else:
        mask, used = ellipse_mask(crop.shape, params, face_box), False
    source = _alter(crop, params)
    weight = mask[..., None]
    blended = source.astype(np.float32) * weight + crop.astype(np.float32) * (1 - weight)
    image = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    # Exactly the input where the mask is zero (guards against any float rounding).
    image[mask == 0] = crop[mask == 0]
    return SelfBlend(image=image, mask=mask.astype(np.float32), used_landmarks=used)


def self_blend_clip(
    crops: np.ndarray, landmarks: np.ndarray | None, rng: np.random.Generator, config=None, face_boxes=None
):
    """Self-blend every crop of a clip with one set of random choices.

    crops: (T, H, W, 3) uint8; landmarks: (T, 68, 2) with NaN rows where none were found, or
    None; face_boxes: (T, 4) face boxes inside the crops, or None for the whole crop.
    Returns (fakes (T, H, W, 3) uint8, number of frames that fell back to the ellipse).
    """
    params = sample_params(rng, config)
    fakes = np.empty_like(crops)
    fallbacks = 0
    for index, crop in enumerate(crops):
        points = None if landmarks is None else landmarks[index]
        box = None if face_boxes is None else tuple(float(v) for v in face_boxes[index])
        result = self_blend(crop, points, params, box)
        fakes[index] = result.image
        fallbacks += not result.used_landmarks
    return fakes, fallbacks
