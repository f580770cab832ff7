"""Masks, colour matching, sharpness changes and compositing shared by the kinds of fake.

Every composite keeps the target's own bytes wherever the mask is zero, so a fake differs from
its real counterpart only inside the manipulated region (before compression).
"""

import cv2
import numpy as np

SHARPNESS = ("none", "sharpen", "blur", "resample")


def roi_around(points: np.ndarray, shape, margin: float = 0.15) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1) of the points' bounding box grown by `margin`, clipped to the frame."""
    height, width = shape[:2]
    x0, y0 = points.min(axis=0)
    x1, y1 = points.max(axis=0)
    grow_x, grow_y = margin * (x1 - x0) + 2, margin * (y1 - y0) + 2
    return (
        int(max(0, np.floor(y0 - grow_y))),
        int(min(height, np.ceil(y1 + grow_y) + 1)),
        int(max(0, np.floor(x0 - grow_x))),
        int(min(width, np.ceil(x1 + grow_x) + 1)),
    )


def hull_mask(shape, points: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """(H, W) uint8 0/1: the convex hull of `points` scaled by `scale` about their centroid."""
    centre = points.mean(axis=0)
    scaled = centre + (points - centre) * scale
    hard = np.zeros(shape[:2], np.uint8)
    cv2.fillConvexPoly(hard, cv2.convexHull(np.round(scaled).astype(np.int32)), 1)
    return hard


def feathered(hard: np.ndarray, width: float) -> np.ndarray:
    """A soft mask that is 0 outside `hard` and on its edge, rising to 1 over `width` pixels inside.

    Distance-based rather than a blur of the hard mask, so the soft edge never leaks outside
    the region and its width does not depend on the region's size.
    """
    inside = cv2.distanceTransform(hard.astype(np.uint8), cv2.DIST_L2, 5)
    ramp = np.clip(inside / max(width, 1.0), 0.0, 1.0)
    return (ramp * ramp * (3 - 2 * ramp)).astype(np.float32)  # smoothstep: no visible kink


def change_sharpness(image: np.ndarray, kind: str, amount: float) -> np.ndarray:
    """The sharpness mismatch a pasted face shows (its own resolution, the generator's blur)."""
    if kind == "sharpen":
        blurred = cv2.GaussianBlur(image, (0, 0), 1.0)
        return cv2.addWeighted(image, 1 + amount, blurred, -amount, 0)
    if kind == "blur":
        return cv2.GaussianBlur(image, (0, 0), 0.3 + amount)
    if kind == "resample":
        height, width = image.shape[:2]
        factor = 1 - 0.5 * amount
        small = cv2.resize(image, (max(4, int(width * factor)), max(4, int(height * factor))))
        return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    return image


def lab_stats(image: np.ndarray, region: np.ndarray) -> np.ndarray:
    """(2, 3) float64: mean and standard deviation of L, a, b over `region` (non-zero pixels)."""
    lab = cv2.cvtColor(image, cv2.COLOR_BGR2LAB).reshape(-1, 3).astype(np.float64)
    chosen = lab[region.reshape(-1) > 0]
    if len(chosen) < 16:
        chosen = lab
    return np.stack([chosen.mean(axis=0), chosen.std(axis=0) + 1e-3])


def transfer_colour(
    image: np.ndarray, own: np.ndarray, wanted: np.ndarray, offset=(0.0, 0.0, 0.0), contrast: bool = True
) -> np.ndarray:
    """Reinhard transfer in LAB: move `image` from statistics `own` to `wanted`, plus `offset`.

    `contrast=False` moves the means only (the source keeps its own contrast)."""
    # Contrast follows only part way: a shaded target would otherwise blow up a flat source face.
    ratio = np.clip(wanted[1] / own[1], 0.8, 1.25) if contrast else 1.0
    lab = cv2.cvtColor(image, cv2.COLOR_BGR2LAB).astype(np.float32)
    lab = (lab - own[0]) * ratio + wanted[0] + np.asarray(offset)
    return cv2.cvtColor(np.clip(np.rint(lab), 0, 255).astype(np.uint8), cv2.COLOR_LAB2BGR)


def seamless(target: np.ndarray, source: np.ndarray, hard: np.ndarray) -> np.ndarray | None:
    """Poisson blending (cv2.seamlessClone) of `source` into `target` where `hard` is set.

    None when OpenCV cannot do it (a region touching the border, or too small): the caller
    then blends with the soft mask alone.
    """
    ys, xs = np.nonzero(hard)
    height, width = hard.shape
    if len(xs) < 16 or xs.min() < 2 or ys.min() < 2 or xs.max() > width - 3 or ys.max() > height - 3:
        return None
    x, y = int(xs.min()), int(ys.min())
    w, h = int(xs.max()) - x + 1, int(ys.max()) - y + 1
    # seamlessClone centres the mask's bounding box on this point: this keeps it in place.
    centre = (x + w // 2, y + h // 2)
    try:
        return cv2.seamlessClone(source, target, hard.astype(np.uint8) * 255, centre, cv2.NORMAL_CLONE)
    except cv2.error:
        return None


def composite(target: np.ndarray, source: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """source * mask + target * (1 - mask), with the target's exact bytes wherever mask == 0."""
    weight = mask[..., None]
    blended = np.rint(source.astype(np.float32) * weight + target.astype(np.float32) * (1 - weight))
    result = target.copy()
    inside = mask > 0
    result[inside] = np.clip(blended, 0, 255).astype(np.uint8)[inside]
    return result


def similarity(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The least-squares similarity (rotation, uniform scale, shift) taking `source` points onto
    `target` points (Umeyama); a 2x3 matrix for cv2.warpAffine. No RANSAC: deterministic."""
    src_mean, dst_mean = source.mean(axis=0), target.mean(axis=0)
    src, dst = source - src_mean, target - dst_mean
    covariance = dst.T @ src / len(source)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1
    rotation = u @ sign @ vt
    variance = (src**2).sum() / len(source)
    scale = float(np.trace(np.diag(singular) @ sign) / max(variance, 1e-9))
    shift = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, shift[:, None]]).astype(np.float64)
