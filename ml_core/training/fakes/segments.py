"""Decode a few consecutive seconds of a video into memory, shrunk to a working size."""

import fractions
from dataclasses import dataclass

import av
import cv2
import numpy as np

from ml_core.media.video import probe


@dataclass
class Segment:
    frames: list[np.ndarray]  # (H, W, 3) uint8 BGR, upright, at most `max_side` on the longest side
    rate: fractions.Fraction  # frames per second of the source
    start: float  # seconds from the start of the video
    duration: float  # of the whole video, seconds

    def __len__(self):
        return len(self.frames)


def shrink(image: np.ndarray, max_side: int) -> np.ndarray:
    height, width = image.shape[:2]
    if not max_side or max(height, width) <= max_side:
        return image
    scale = max_side / max(height, width)
    size = (max(2, round(width * scale)), max(2, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def duration_of(path) -> float:
    """The video's duration in seconds; raises ml_core.errors.MediaError when it is not a video."""
    return probe(path).duration


def read_segment(path, start: float, seconds: float, max_side: int = 720) -> Segment:
    """`seconds` of video from `start` (clamped so the segment fits), every frame, in order.

    Raises ml_core.errors.MediaError for files that are not readable videos. The same
    arguments always give the same frames. Decoding always starts at the first frame: some
    FaceForensics++ files flag frames as keyframes that do not decode on their own (seeking to
    ffpp_c23_original_175's keyframe at 4.84 s gives green garbage for the next ten seconds),
    and frames before `start` are decoded but never converted to pixels, which is cheap.
    """
    info = probe(path)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate or fractions.Fraction(25)
        start = max(0.0, min(start, info.duration - seconds)) if info.duration else 0.0
        wanted = max(1, round(seconds * float(rate)))
        time_base = stream.time_base or fractions.Fraction(1, int(rate))
        first_pts = stream.start_time or 0
        earliest = start - 0.5 / float(rate)  # half a frame early: timestamps are rounded
        frames = []
        try:
            for frame in container.decode(stream):
                if frame.pts is not None and float((frame.pts - first_pts) * time_base) < earliest:
                    continue
                image = frame.to_ndarray(format="bgr24")
                if info.rotation:
                    image = np.rot90(image, k=-info.rotation // 90)
                frames.append(np.ascontiguousarray(shrink(image, max_side)))
                if len(frames) >= wanted:
                    break
        except av.FFmpegError:
            pass  # a damaged tail: keep what decoded; callers check the length
    return Segment(frames, fractions.Fraction(rate), start, info.duration)
