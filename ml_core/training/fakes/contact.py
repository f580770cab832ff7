"""Contact sheets: a grid of target | fake | difference tiles, to look at what was generated."""

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

TILE = 160  # pixels per panel side


@dataclass
class Sample:
    name: str
    target: np.ndarray  # (TILE, TILE, 3) uint8 crops around the face
    fake: np.ndarray
    mask: np.ndarray  # (TILE, TILE) float32


def face_square(points: np.ndarray, shape, grow: float = 0.5) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1): a square around the landmarks, `grow` of their size added on each side."""
    height, width = shape[:2]
    x0, y0 = points.min(axis=0)
    x1, y1 = points.max(axis=0)
    side = max(x1 - x0, y1 - y0) * (1 + 2 * grow)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half = side / 2
    return (
        int(max(0, cy - half)),
        int(min(height, cy + half)),
        int(max(0, cx - half)),
        int(min(width, cx + half)),
    )


def sample(name: str, target: np.ndarray, fake: np.ndarray, mask: np.ndarray, points: np.ndarray) -> Sample:
    """Crop one frame's target, fake and mask around the face, at TILE x TILE."""
    y0, y1, x0, x1 = face_square(points, target.shape)

    def crop(image, interpolation=cv2.INTER_AREA):
        return cv2.resize(image[y0:y1, x0:x1], (TILE, TILE), interpolation=interpolation)

    return Sample(name, crop(target), crop(fake), crop(mask, cv2.INTER_LINEAR))


def _tile(item: Sample) -> np.ndarray:
    difference = np.abs(item.fake.astype(np.int16) - item.target.astype(np.int16)).max(axis=2)
    heat = cv2.applyColorMap(np.clip(difference * 4, 0, 255).astype(np.uint8), cv2.COLORMAP_INFERNO)
    # The mask's half-weight line, so a paste that missed the face shows at a glance.
    contours, _ = cv2.findContours(
        (item.mask >= 0.5).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE
    )
    cv2.drawContours(heat, contours, -1, (0, 255, 0), 1)
    row = np.concatenate([item.target, item.fake, heat], axis=1)
    cv2.putText(row, item.name[:60], (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1, cv2.LINE_AA)
    return row


def write_contact_sheet(samples: list[Sample], path, columns: int = 2) -> Path | None:
    """One PNG with a target | fake | |difference| x 4 row per sample; None when there are none."""
    if not samples:
        return None
    tiles = [_tile(item) for item in samples]
    blank = np.zeros_like(tiles[0])
    while len(tiles) % columns:
        tiles.append(blank)
    rows = [np.concatenate(tiles[i : i + columns], axis=1) for i in range(0, len(tiles), columns)]
    sheet = np.concatenate(rows, axis=0)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(".png", sheet)
    if not ok:
        raise RuntimeError(f"could not encode {path}")
    path.write_bytes(data.tobytes())
    return path
