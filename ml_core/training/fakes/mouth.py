"""Mouth re-enactment of the same person (Face2Face / NeuralTextures-like).

Those methods change the expression, not the identity, and leave their traces around the
mouth and lower face. Here each target frame t gets the mouth (or the whole lower face) of the
same clip at another moment: a fixed offset t + k (reflected at the ends of the segment) or
the segment played backwards. The borrowed region is aligned by a similarity transform on the
nose, lower jaw and mouth corners and blended in a feathered mask around the mouth; the random
choices are drawn once per clip, and outside the mask every frame keeps its exact bytes.
"""

from collections.abc import Iterator
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from ml_core.training.fakes import blending

MOUTH = list(range(48, 68))
# Points that move with the head rather than with the lips: nose, the jaw's upper sides and
# the mouth corners (which carry the mouth's position without its opening).
ALIGN = [27, 28, 29, 30, 31, 32, 33, 34, 35, 2, 3, 4, 12, 13, 14, 48, 54]
# The lower face: the jaw from cheek to cheek, the nostrils and the mouth.
LOWER_FACE = list(range(3, 14)) + [31, 32, 33, 34, 35] + MOUTH


@dataclass(frozen=True)
class MouthConfig:
    time_modes: tuple[str, ...] = ("offset", "offset", "reverse")
    offset_seconds: tuple[float, float] = (0.4, 1.6)  # |k| of t + k, in seconds
    regions: tuple[str, ...] = ("mouth", "mouth", "lower_face")
    mouth_grow: tuple[float, float] = (1.25, 1.6)  # hull of the lips, scaled about its centre
    lower_face_grow: tuple[float, float] = (0.85, 0.98)
    feather_range: tuple[float, float] = (0.12, 0.3)  # soft edge width, fraction of the region size
    strength_range: tuple[float, float] = (0.7, 1.0)
    sharpness_amount: tuple[float, float] = (0.1, 0.5)


@dataclass(frozen=True)
class MouthParams:
    time_mode: str  # "offset" | "reverse"
    offset: int  # frames, signed (offset mode)
    region: str  # "mouth" | "lower_face"
    grow: float
    feather: float
    strength: float
    sharpness: str
    sharpness_amount: float

    def to_dict(self):
        return asdict(self)


@dataclass
class MouthFrame:
    image: np.ndarray  # (H, W, 3) uint8
    mask: np.ndarray  # (H, W) float32 blend weight of the borrowed mouth; 0 = untouched
    source_index: int


def sample_params(rng: np.random.Generator, fps: float, config: MouthConfig | None = None) -> MouthParams:
    config = config or MouthConfig()
    region = str(rng.choice(config.regions))
    grow = config.mouth_grow if region == "mouth" else config.lower_face_grow
    magnitude = max(1, int(round(rng.uniform(*config.offset_seconds) * fps)))
    return MouthParams(
        time_mode=str(rng.choice(config.time_modes)),
        offset=int(magnitude * rng.choice([-1, 1])),
        region=region,
        grow=float(rng.uniform(*grow)),
        feather=float(rng.uniform(*config.feather_range)),
        strength=float(rng.uniform(*config.strength_range)),
        sharpness=str(rng.choice(blending.SHARPNESS)),
        sharpness_amount=float(rng.uniform(*config.sharpness_amount)),
    )


def source_index(t: int, count: int, params: MouthParams) -> int:
    """The frame whose mouth frame `t` shows: t + offset reflected into the segment, or reversed."""
    if count <= 1:
        return 0
    if params.time_mode == "reverse":
        return count - 1 - t
    period = 2 * (count - 1)
    phase = (t + params.offset) % period
    return phase if phase < count else period - phase


def mouth_region(shape, points: np.ndarray, params: MouthParams) -> np.ndarray:
    """(H, W) uint8 0/1: the grown hull of the lips, or of the lower face."""
    chosen = points[MOUTH] if params.region == "mouth" else points[LOWER_FACE]
    return blending.hull_mask(shape, chosen, params.grow)


def mouth_frame(
    target: np.ndarray,
    target_points: np.ndarray,
    source: np.ndarray,
    source_points: np.ndarray,
    params: MouthParams,
    source_at: int = -1,
) -> MouthFrame:
    """Paste the mouth region of `source` (aligned to the target's head) into `target`."""
    matrix = blending.similarity(source_points[ALIGN], target_points[ALIGN])
    region_points = target_points[MOUTH] if params.region == "mouth" else target_points[LOWER_FACE]
    centre = region_points.mean(axis=0)
    grown = centre + (region_points - centre) * max(params.grow, 1.0)
    roi = blending.roi_around(grown, target.shape, margin=0.1)
    y0, y1, x0, x1 = roi
    # Warp into the ROI only: shift the matrix so the ROI's corner is the origin.
    shifted = matrix.copy()
    shifted[:, 2] -= (x0, y0)
    warped = cv2.warpAffine(
        source, shifted, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101
    )
    warped = blending.change_sharpness(warped, params.sharpness, params.sharpness_amount)
    offset = np.array([x0, y0], np.float32)
    hard = mouth_region((y1 - y0, x1 - x0), target_points - offset, params)
    size = float(np.sqrt(max(hard.sum(), 1)))
    soft = blending.feathered(hard, params.feather * size) * params.strength
    mask = np.zeros(target.shape[:2], np.float32)
    mask[y0:y1, x0:x1] = soft
    image = target.copy()
    image[y0:y1, x0:x1] = blending.composite(target[y0:y1, x0:x1], warped, soft)
    return MouthFrame(image, mask, source_at)


def mouth_clip(frames, landmarks, params: MouthParams) -> Iterator[MouthFrame]:
    """Re-enact the mouth of every frame of a segment with another moment of it, frame by frame."""
    count = len(frames)
    for t in range(count):
        s = source_index(t, count, params)
        yield mouth_frame(frames[t], landmarks[t], frames[s], landmarks[s], params, s)
