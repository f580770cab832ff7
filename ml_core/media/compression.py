"""Real H.264 re-compression (PyAV's libx264): what uploads go through before they reach us.

FaceForensics++ ships its videos at two strengths of libx264's constant rate factor, c23 (CRF
23) and c40 (CRF 40); social networks and messengers also shrink the frame and cap the bitrate.
A detector that has only seen c23 learns traces that c40 erases, so training re-encodes clips
and evaluation re-encodes whole test videos with the same encoder (`reencode`, `encode_clip`).

Everything here is lossy on purpose and deterministic for a given input and setting (libx264
runs with one thread and no timing-dependent decisions).
"""

import fractions
from dataclasses import asdict, dataclass
from pathlib import Path

import av
import numpy as np

from ml_core.io import atomic_write


@dataclass(frozen=True)
class Compression:
    """One H.264 setting. `max_side`: shrink frames whose longest side is larger (0 = keep)."""

    name: str
    crf: int
    max_side: int = 0
    preset: str = "veryfast"

    def __post_init__(self):
        if not 0 <= self.crf <= 51:
            raise ValueError(f"crf must be in 0..51, got {self.crf}")
        if self.max_side and self.max_side < 16:
            raise ValueError(f"max_side must be 0 or at least 16, got {self.max_side}")

    def to_dict(self):
        return asdict(self)


# FaceForensics++'s two strengths, and a messenger-like re-upload (a 640 px frame at c36).
PRESETS = {
    "c23": Compression("c23", 23),
    "c40": Compression("c40", 40),
    "social": Compression("social", 36, max_side=640),
}


def _even(value: int) -> int:
    return max(2, int(value) // 2 * 2)  # yuv420p needs even sizes


def output_size(width: int, height: int, max_side: int = 0) -> tuple[int, int]:
    """The encoded frame size: shrunk to `max_side` when larger, kept otherwise, always even."""
    scale = min(1.0, max_side / max(width, height)) if max_side else 1.0
    return _even(round(width * scale)), _even(round(height * scale))


def _stream(container, compression: Compression, width: int, height: int, rate):
    stream = container.add_stream("libx264", rate=rate)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.options = {"crf": str(compression.crf), "preset": compression.preset}
    stream.codec_context.time_base = fractions.Fraction(1, 1) / rate
    stream.thread_count = 1
    return stream


def reencode(src, dst, compression: Compression, *, max_frames: int | None = None) -> dict:
    """Decode `src`, encode every frame (or the first `max_frames`) with `compression` into `dst`.

    The result has the same frames in the same order at a constant frame rate (the source's
    average), so frame N of `dst` shows frame N of `src`. Written atomically. Returns facts
    about the output (frames, size, bytes).
    """
    dst = Path(dst)
    with av.open(str(src)) as source:
        video = source.streams.video[0]
        video.thread_type = "AUTO"
        rate = video.average_rate or fractions.Fraction(25)
        width, height = output_size(
            video.codec_context.width, video.codec_context.height, compression.max_side
        )
        with atomic_write(dst) as handle:
            frames = _encode(
                (f for f in source.decode(video)), handle, compression, width, height, rate, max_frames
            )
    return {"frames": frames, "width": width, "height": height, "bytes": dst.stat().st_size}


def write_video(frames, dst, compression: Compression, rate=25) -> dict:
    """Encode BGR uint8 frames (H, W, 3) into `dst` (atomically) with `compression`."""
    frames = list(frames)
    if not frames:
        raise ValueError("no frames to write")
    height, width = frames[0].shape[:2]
    out_w, out_h = output_size(width, height, compression.max_side)
    rate = fractions.Fraction(rate).limit_denominator(1001)
    dst = Path(dst)
    with atomic_write(dst) as handle:
        count = _encode(
            (av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="bgr24") for f in frames),
            handle,
            compression,
            out_w,
            out_h,
            rate,
            None,
        )
    return {"frames": count, "width": out_w, "height": out_h, "bytes": dst.stat().st_size}


def _encode(frames, handle, compression, width, height, rate, max_frames) -> int:
    count = 0
    with av.open(handle, "w", format="mp4") as out:
        stream = _stream(out, compression, width, height, rate)
        for frame in frames:
            if max_frames is not None and count >= max_frames:
                break
            frame = frame.reformat(width=width, height=height, format="yuv420p", interpolation="AREA")
            frame.pts, frame.time_base = count, stream.codec_context.time_base
            out.mux(stream.encode(frame))
            count += 1
        out.mux(stream.encode())
    return count


def encode_clip(crops: np.ndarray, crf: int, preset: str = "veryfast") -> np.ndarray:
    """Round-trip a clip of BGR uint8 crops (T, H, W, 3) through H.264 in memory; same shape back.

    Training's compression augmentation: the crops of one clip are encoded as one short video
    (the first an I-frame, the rest predicted from it), so the blocking, smoothing and
    chroma loss are those of a real encoder rather than of JPEG.
    """
    import io

    crops = np.ascontiguousarray(crops)
    t, height, width = crops.shape[:3]
    # yuv420p needs even sizes: pad by replicating the last row/column, cut back after decoding.
    pad_h, pad_w = height % 2, width % 2
    if pad_h or pad_w:
        crops = np.pad(crops, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    buffer = io.BytesIO()
    compression = Compression("clip", crf, preset=preset)
    _encode(
        (av.VideoFrame.from_ndarray(c, format="bgr24") for c in crops),
        buffer,
        compression,
        width + pad_w,
        height + pad_h,
        fractions.Fraction(25),
        None,
    )
    buffer.seek(0)
    decoded = []
    with av.open(buffer, "r", format="mp4") as container:
        for frame in container.decode(video=0):
            decoded.append(frame.to_ndarray(format="bgr24")[:height, :width])
    if len(decoded) != t:
        raise RuntimeError(f"H.264 round trip returned {len(decoded)} of {t} frames")
    return np.stack(decoded)
