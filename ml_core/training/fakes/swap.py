"""Cross-identity face swap, a whole segment at a time (FaceForensics++'s FaceSwap, in 2D).

The source face (one frame of another person's real clip, or a short run of its frames played
back and forth) is warped triangle by triangle onto the target's landmarks in every frame,
colour-matched to the target's skin in LAB, given a sharpness mismatch, and blended inside a
feathered mask built from the target's landmark hull, either with the soft mask alone or after
Poisson blending (cv2.seamlessClone). The random choices are drawn once per clip, so the fake
does not flicker; outside the mask every frame keeps its exact bytes.
"""

from collections.abc import Iterator
from dataclasses import asdict, dataclass

import cv2
import numpy as np
from scipy.spatial import Delaunay

from ml_core.training.fakes import blending
from ml_core.training.fakes.landmarks import yaw


@dataclass(frozen=True)
class SwapConfig:
    hull_scale_range: tuple[float, float] = (0.88, 1.04)  # mask hull shrinks or grows about its centre
    feather_range: tuple[float, float] = (0.06, 0.2)  # soft edge width, fraction of the face size
    opacities: tuple[float, ...] = (0.85, 1.0, 1.0, 1.0)
    blend_modes: tuple[str, ...] = ("alpha", "seamless")
    # "lab": means and contrast follow the target; "mean": means only. Never no correction at all:
    # a face of another skin tone pasted as is makes blotches no method in the wild leaves.
    colour_modes: tuple[str, ...] = ("lab", "lab", "lab", "mean")
    colour_mismatch: float = 4.0  # max LAB offset left after colour matching
    sharpness_amount: tuple[float, float] = (0.2, 0.8)
    source_runs: tuple[int, ...] = (1, 8, 16)  # source frames per fake (1 = a still source face)
    colour_follow: float = 0.3  # weight of the current frame in the running colour statistics
    ring_scale: float = 1.3  # outer control points (jaw, brows) pushed out so the warp covers the hull


@dataclass(frozen=True)
class SwapParams:
    hull_scale: float
    feather: float
    opacity: float
    blend: str
    colour: str
    mismatch: tuple[float, float, float]
    sharpness: str
    sharpness_amount: float
    source_run: int
    source_start: float  # fraction of the source frames the run starts at

    def to_dict(self):
        return asdict(self)


@dataclass
class SwapFrame:
    image: np.ndarray  # (H, W, 3) uint8
    mask: np.ndarray  # (H, W) float32 blend weight of the source face; 0 = untouched


def sample_params(rng: np.random.Generator, config: SwapConfig | None = None) -> SwapParams:
    config = config or SwapConfig()
    return SwapParams(
        hull_scale=float(rng.uniform(*config.hull_scale_range)),
        feather=float(rng.uniform(*config.feather_range)),
        opacity=float(rng.choice(config.opacities)),
        blend=str(rng.choice(config.blend_modes)),
        colour=str(rng.choice(config.colour_modes)),
        mismatch=tuple(float(v) for v in rng.uniform(-config.colour_mismatch, config.colour_mismatch, 3)),
        sharpness=str(rng.choice(blending.SHARPNESS)),
        sharpness_amount=float(rng.uniform(*config.sharpness_amount)),
        source_run=int(rng.choice(config.source_runs)),
        source_start=float(rng.uniform(0, 1)),
    )


def extend(points: np.ndarray, ring_scale: float) -> np.ndarray:
    """The 68 points plus the jaw and brows pushed out from the centre: control points around the
    hull, so the warp also covers a mask that grows past the landmarks."""
    centre = points.mean(axis=0)
    ring = centre + (points[:27] - centre) * ring_scale
    return np.concatenate([points, ring]).astype(np.float32)


def triangulate(points: np.ndarray) -> np.ndarray:
    """(K, 3) point indices of a Delaunay triangulation; computed once per clip and reused."""
    return Delaunay(points.astype(np.float64)).simplices.astype(np.int32)


def warp_triangles(source, source_points, target_points, triangles, roi):
    """Piecewise-affine warp of `source` so `source_points` land on `target_points`, inside `roi`.

    Returns the warped (h, w, 3) image of the ROI and where a triangle covers it (bool). One
    remap per frame: a triangle-index raster picks each pixel's affine map.
    """
    y0, y1, x0, x1 = roi
    height, width = y1 - y0, x1 - x0
    local = (target_points - np.array([x0, y0], np.float32)) * 16
    ids = np.full((height, width), -1, np.int32)
    for index, triangle in enumerate(triangles):
        cv2.fillConvexPoly(ids, np.round(local[triangle]).astype(np.int32), int(index), cv2.LINE_8, 4)
    # Affine maps target -> source per triangle: [x, y, 1] @ M = [x', y'].
    corners = np.concatenate([target_points[triangles], np.ones((len(triangles), 3, 1), np.float32)], axis=2)
    maps = np.linalg.pinv(corners.astype(np.float64)) @ source_points[triangles].astype(np.float64)
    covered = ids >= 0
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    chosen = maps[np.maximum(ids, 0)]  # (h, w, 3, 2)
    map_x = xs * chosen[..., 0, 0] + ys * chosen[..., 1, 0] + chosen[..., 2, 0]
    map_y = xs * chosen[..., 0, 1] + ys * chosen[..., 1, 1] + chosen[..., 2, 1]
    warped = cv2.remap(
        source,
        map_x.astype(np.float32),
        map_y.astype(np.float32),
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REFLECT101,
    )
    return warped, covered


def swap_frame(
    target: np.ndarray,
    target_points: np.ndarray,
    source: np.ndarray,
    source_points: np.ndarray,
    params: SwapParams,
    triangles: np.ndarray,
    config: SwapConfig | None = None,
    colour_state: np.ndarray | None = None,
) -> tuple[SwapFrame, np.ndarray]:
    """One swapped frame, and the running colour statistics to pass to the next frame."""
    config = config or SwapConfig()
    ext_target = extend(target_points, config.ring_scale)
    ext_source = extend(source_points, config.ring_scale)
    roi = blending.roi_around(ext_target, target.shape, margin=0.05)
    y0, y1, x0, x1 = roi
    target_roi = target[y0:y1, x0:x1]
    warped, covered = warp_triangles(source, ext_source, ext_target, triangles, roi)
    offset = np.array([x0, y0], np.float32)
    hard = blending.hull_mask(target_roi.shape, target_points - offset, params.hull_scale) & covered
    face_size = float(np.sqrt(max(hard.sum(), 1)))
    # Statistics from the inner face only: the hull's rim mixes in hair and background.
    inner = blending.hull_mask(target_roi.shape, target_points - offset, 0.8) & covered
    stats = np.stack([blending.lab_stats(warped, inner), blending.lab_stats(target_roi, inner)])
    if colour_state is not None:
        stats = (1 - config.colour_follow) * colour_state + config.colour_follow * stats
    warped = blending.transfer_colour(
        warped, stats[0], stats[1], params.mismatch, contrast=params.colour == "lab"
    )
    warped = blending.change_sharpness(warped, params.sharpness, params.sharpness_amount)
    soft = blending.feathered(hard, params.feather * face_size) * params.opacity
    if params.blend == "seamless":
        cloned = blending.seamless(target_roi, warped, hard)
        warped = cloned if cloned is not None else warped
    mask = np.zeros(target.shape[:2], np.float32)
    mask[y0:y1, x0:x1] = soft
    image = target.copy()
    image[y0:y1, x0:x1] = blending.composite(target_roi, warped, soft)
    return SwapFrame(image, mask), stats


# dlib's 68 points mirrored left-right: jaw, brows, nose wings, eyes and mouth change sides.
MIRROR = np.array(
    list(range(16, -1, -1))
    + list(range(26, 16, -1))
    + [27, 28, 29, 30, 35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55, 64, 63, 62, 61, 60, 67, 66, 65]
)


def mirrored(frames, landmarks: np.ndarray):
    """The source frames flipped left-right, with their landmarks flipped and renumbered."""
    width = frames[0].shape[1]
    flipped = np.asarray(landmarks, np.float32).copy()
    flipped[..., 0] = width - 1 - flipped[..., 0]
    return [np.ascontiguousarray(frame[:, ::-1]) for frame in frames], flipped[:, MIRROR]


def facing_other_way(
    target_landmarks: np.ndarray, source_landmarks: np.ndarray, margin: float = 0.05
) -> bool:
    """Whether the source face is turned to the other side than the target's (median yaw).

    A face turned left warped onto one turned right stretches one cheek and squeezes the other;
    mirroring the source first makes the two agree (faces are nearly symmetric).
    """
    target = float(np.median([yaw(p) for p in target_landmarks]))
    source = float(np.median([yaw(p) for p in source_landmarks]))
    return abs(target) > margin and abs(source) > margin and target * source < 0


def source_index(t: int, params: SwapParams, available: int) -> int:
    """Which source frame target frame `t` uses: a run played forwards then backwards."""
    run = max(1, min(params.source_run, available))
    start = int(params.source_start * (available - run))
    if run == 1:
        return start
    period = 2 * (run - 1)
    phase = t % period
    return start + (phase if phase < run else period - phase)


def swap_clip(
    target_frames, target_landmarks, source_frames, source_landmarks, params: SwapParams, config=None
) -> Iterator[SwapFrame]:
    """Swap the source face into every target frame, one frame at a time. target_landmarks: (T, 68, 2);
    source_frames/source_landmarks: the source person's frames and their (S, 68, 2) points."""
    config = config or SwapConfig()
    triangles = triangulate(extend(np.asarray(target_landmarks).mean(axis=0), config.ring_scale))
    state = None
    for t, (frame, points) in enumerate(zip(target_frames, target_landmarks)):
        s = source_index(t, params, len(source_frames))
        result, state = swap_frame(
            frame, points, source_frames[s], source_landmarks[s], params, triangles, config, state
        )
        yield result
