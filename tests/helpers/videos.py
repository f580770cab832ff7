"""Small synthetic videos for tests, made from the astronaut photo that scikit-image ships.

No network: the face comes from `skimage.data.astronaut()` (Eileen Collins, a public-domain
NASA portrait), pasted onto a plain background and moved/scaled across frames.
"""

from functools import cache
from pathlib import Path

import cv2
import numpy as np


@cache
def astronaut_bgr():
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


@cache
def face_patch():
    """The head-and-shoulders part of the astronaut photo (BGR, 256x256)."""
    return astronaut_bgr()[20:276, 110:366].copy()


def write_video(path, frames, fps=10.0, fourcc="mp4v"):
    """Write BGR uint8 frames to `path` with OpenCV and return the path."""
    path = Path(path)
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV could not open a writer for {path}")
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def face_frames(count=30, size=(320, 240), face_size=160, move=True, face_from=0, second_face=False, seed=0):
    """Frames with the astronaut's face drifting across a grey background.

    `face_from`: first frame index that shows the face (earlier frames are empty background).
    `second_face`: also paste a mirrored copy on the other side (two identities).
    """
    rng = np.random.default_rng(seed)
    width, height = size
    patch = cv2.resize(face_patch(), (face_size, face_size))
    mirrored = patch[:, ::-1]
    frames = []
    for i in range(count):
        frame = np.full((height, width, 3), 110, np.uint8)
        frame += rng.integers(0, 8, frame.shape, dtype=np.uint8)
        if i >= face_from:
            shift = int(round(8 * np.sin(i / 4))) if move else 0
            x = max(0, min(width - face_size, (width - face_size) // 2 + shift))
            if second_face:
                x = max(0, (width // 2 - face_size) // 2 + shift)
            y = max(0, min(height - face_size, (height - face_size) // 2 + shift // 2))
            frame[y : y + face_size, x : x + face_size] = patch
            if second_face:
                x2 = width // 2 + (width // 2 - face_size) // 2
                frame[y : y + face_size, x2 : x2 + face_size] = mirrored
        frames.append(frame)
    return frames


def make_face_video(path, count=30, size=(320, 240), fps=10.0, **kwargs):
    return write_video(path, face_frames(count=count, size=size, **kwargs), fps=fps)


def make_blank_video(path, count=20, size=(320, 240), fps=10.0):
    """A video with no face in it."""
    frames = [np.full((size[1], size[0], 3), 90 + (i % 5) * 10, np.uint8) for i in range(count)]
    return write_video(path, frames, fps=fps)
