"""Probe a video file and decode only the frames we sample from it.

PyAV (FFmpeg) does the work. The file's content decides what it is, never its extension.
Sampling reads the packet table first (demuxing is cheap: no decoding), so it knows every
frame's presentation timestamp and where the keyframes are; it then seeks to a keyframe only
when that skips work, and otherwise decodes forward, converting to pixels only the frames it
returns. At most one decoded frame is alive at a time, so memory does not grow with the
video's length (the timestamp table is a few bytes per frame).

Frames above the pixel cap (MAX_FRAME_PIXELS, 4K) are refused from the headers before any frame
is decoded, and FFmpeg's `max_pixels` bound stops every decoder we open (the one FFmpeg runs
while opening a file included) from allocating a larger picture, whatever the headers claim.
"""

import bisect
import logging
import queue
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ml_core.constants import MAX_FRAME_PIXELS, MAX_FRAME_SIZE
from ml_core.errors import NotAVideo, NoVideoStream, TruncatedVideo, VideoTooLarge

logger = logging.getLogger(__name__)

# Box types at offset 4 of an ISO-BMFF (MP4/MOV) file: the file claims to be MP4 even when
# FFmpeg cannot read it, which tells "damaged video" apart from "not a video at all".
_MP4_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide")


@dataclass(frozen=True)
class VideoInfo:
    path: str
    duration: float  # seconds
    fps: float
    frame_count: int
    width: int  # after rotation: what a viewer sees
    height: int
    rotation: int  # clockwise degrees to display upright (0/90/180/270), like ffprobe's "rotate" tag
    codec: str
    container: str
    has_audio: bool

    def to_dict(self):
        return asdict(self)


@dataclass
class DecodedFrame:
    index: int  # frame number in presentation order
    timestamp: float  # seconds from the first frame
    image: np.ndarray  # (H, W, 3) uint8 BGR, upright


def _open(path, max_pixels):
    path = Path(path)
    if not path.is_file():
        raise NotAVideo(f"{path} does not exist or is not a file")
    if path.stat().st_size == 0:
        raise NotAVideo(
            f"{path} is empty", user_message="This file is empty (0 bytes). Upload the video again."
        )
    try:
        # Opening decodes a frame when the headers leave the picture format open (PNG does): the
        # bound applies to that decoder too.
        return av.open(str(path), options={"max_pixels": str(max_pixels)})
    except av.FFmpegError as exc:
        with open(path, "rb") as fh:
            head = fh.read(12)
        if head[4:8] in _MP4_BOXES:
            raise TruncatedVideo(f"{path}: looks like MP4/MOV but FFmpeg cannot open it: {exc}") from exc
        raise NotAVideo(f"{path}: FFmpeg cannot open it: {exc}") from exc


def _video_stream(container, path, max_pixels):
    if not container.streams.video:
        raise NoVideoStream(f"{path} has no video stream")
    stream = container.streams.video[0]
    if stream.codec_context is None or stream.codec_context.name is None:
        raise NotAVideo(f"{path}: video stream with no known codec")
    # The decoder refuses (EINVAL) a picture above the cap instead of allocating it.
    stream.codec_context.options = {"max_pixels": str(max_pixels)}
    return stream


def _too_large_message(max_pixels, size=None):
    if max_pixels == MAX_FRAME_PIXELS:
        limit = "{}×{} (4K)".format(*MAX_FRAME_SIZE)
    else:
        limit = f"{max_pixels:,} pixels"
    shown = f"{size[0]}×{size[1]} pixels, " if size else ""
    return (
        f"This video's frames are {shown}larger than {limit}. "
        "Re-encode it at 4K or below and upload it again."
    )


def check_frame_size(width, height, max_pixels=MAX_FRAME_PIXELS):
    """Raise VideoTooLarge for a frame above the pixel cap; a size of 0 (not declared) passes."""
    if width * height > max_pixels:
        raise VideoTooLarge(
            f"{width}x{height} exceeds {max_pixels} pixels",
            user_message=_too_large_message(max_pixels, (width, height)),
        )


def _rotation_cw(frame):
    # PyAV reports the display matrix angle counter-clockwise (FFmpeg's convention).
    return int(round(-(frame.rotation or 0) / 90.0)) % 4 * 90


def _owned(image):
    """PyAV may hand out a view of a frame buffer that the decoder reuses: keep our own copy."""
    return image if image.flags.owndata else image.copy()


def _upright(image, rotation_cw):
    if rotation_cw == 0:
        return image
    return np.ascontiguousarray(np.rot90(image, k=-rotation_cw // 90))


def _first_frame(container, stream, path, max_pixels):
    try:
        for frame in container.decode(stream):
            return frame
    except av.error.ArgumentError as exc:
        # EINVAL is how a decoder refuses a picture above max_pixels (damaged data gives
        # InvalidDataError): the headers declared no size, or a smaller one than the frame's.
        raise VideoTooLarge(f"{path}: {exc}", user_message=_too_large_message(max_pixels)) from exc
    except av.FFmpegError as exc:
        raise TruncatedVideo(f"{path}: decoding failed before the first frame: {exc}") from exc
    raise TruncatedVideo(f"{path}: no decodable frame")


def probe(path, max_pixels=MAX_FRAME_PIXELS) -> VideoInfo:
    """Describe a video, checking that at least its first frame decodes.

    Raises NotAVideo, NoVideoStream, TruncatedVideo or VideoTooLarge (frames above `max_pixels`)
    with a message a user can act on.
    """
    container = _open(path, max_pixels)
    with container:
        stream = _video_stream(container, path, max_pixels)
        # The declared size first: a bomb is refused before a single frame is decoded.
        check_frame_size(stream.codec_context.width, stream.codec_context.height, max_pixels)
        first = _first_frame(container, stream, path, max_pixels)
        check_frame_size(first.width, first.height, max_pixels)
        rotation = _rotation_cw(first)
        width, height = first.width, first.height
        if rotation in (90, 270):
            width, height = height, width
        fps = float(stream.average_rate or stream.guessed_rate or stream.base_rate or 0)
        duration = 0.0
        if stream.duration and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        elif container.duration:
            duration = container.duration / av.time_base
        frame_count = stream.frames or len(stream.index_entries or ()) or int(round(duration * fps))
        return VideoInfo(
            path=str(path),
            duration=round(duration, 4),
            fps=round(fps, 4),
            frame_count=int(frame_count),
            width=int(width),
            height=int(height),
            rotation=rotation,
            codec=stream.codec_context.name,
            container=container.format.name,
            has_audio=bool(container.streams.audio),
        )


def _packet_timestamps(path, max_pixels):
    """Sorted presentation timestamps of every video packet, and the keyframes' timestamps.

    Returns (None, None) when the container gives no timestamps (we then count frames).
    """
    pts, keys = [], []
    with _open(path, max_pixels) as container:
        stream = _video_stream(container, path, max_pixels)
        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue  # the flush packet at the end
                if packet.pts is None:
                    return None, None
                pts.append(packet.pts)
                if packet.is_keyframe:
                    keys.append(packet.pts)
        except av.FFmpegError as exc:
            logger.warning("demuxing %s stopped early: %s", path, exc)
    pts.sort()
    keys.sort()
    return pts, keys


def uniform_indices(total, count):
    """`count` frame indices spread evenly over 0..total-1, first and last included."""
    if total <= count:
        return list(range(total))
    return sorted({int(round(x)) for x in np.linspace(0, total - 1, count)})


def uniform_in_time(pts_table, count):
    """Indices of the frames nearest to `count` instants spread evenly between first and last frame.

    Same as uniform_indices for a constant frame rate; with a variable frame rate it follows the
    clock, not the frame counter. If bursts of frames make two instants pick the same frame, the
    evenly spaced indices are used instead so the count stays the same.
    """
    total = len(pts_table)
    if total <= count:
        return list(range(total))
    picks = []
    for target in np.linspace(pts_table[0], pts_table[-1], count):
        i = bisect.bisect_left(pts_table, target)
        if i > 0 and (i == total or target - pts_table[i - 1] <= pts_table[i] - target):
            i -= 1
        picks.append(i)
    unique = sorted(set(picks))
    return unique if len(unique) == count else uniform_indices(total, count)


def select_indices(total, count, strategy):
    if strategy == "first-n":
        return list(range(min(total, count)))
    if strategy == "uniform":
        return uniform_indices(total, count)
    raise ValueError(f"unknown sampling strategy {strategy!r} (use 'uniform' or 'first-n')")


def iter_frames(
    path, count, strategy="uniform", stats=None, max_pixels=MAX_FRAME_PIXELS
) -> Iterator[DecodedFrame]:
    """Yield the sampled frames (upright BGR) in time order, decoding no more than needed.

    `stats` (a dict), when given, receives: total_frames, requested, seeks, decoded,
    truncated_at (frame index where decoding stopped early, or None). A frame above
    `max_pixels` is never decoded: decoding stops there, as at a damaged frame.
    """
    stats = stats if stats is not None else {}
    pts_table, keyframes = _packet_timestamps(path, max_pixels)
    if pts_table is not None and not pts_table:
        raise TruncatedVideo(f"{path}: the video stream holds no frames")
    container = _open(path, max_pixels)
    with container:
        stream = _video_stream(container, path, max_pixels)
        stream.thread_type = "AUTO"  # frame threads: both cores decode
        if pts_table is None:
            # No timestamps (rare: some AVI/raw streams): the header's count picks the frames.
            total = stream.frames or 0
            if total <= 0:
                total = sum(1 for _ in _safe_decode(container, stream, path))
                container.seek(0)
            wanted = select_indices(total, count, strategy)
            if not wanted:
                raise TruncatedVideo(f"{path}: the video stream holds no decodable frames")
            yield from _decode_counting(container, stream, path, wanted, stats, total)
            return
        total = len(pts_table)
        if strategy == "uniform":
            wanted = uniform_in_time(pts_table, count)
        else:
            wanted = select_indices(total, count, strategy)
        stats.update(total_frames=total, requested=count, seeks=0, decoded=0, truncated_at=None)
        yield from _decode_by_pts(container, stream, path, pts_table, keyframes, wanted, stats)


def prefetched(frames: Iterator[DecodedFrame], depth=2) -> Iterator[DecodedFrame]:
    """Run a frame iterator in a background thread, `depth` frames ahead of the consumer.

    FFmpeg decodes without holding the GIL, so decoding the next sampled frame overlaps with
    whatever the consumer does with this one (dlib holds the GIL, so it cannot be overlapped
    with itself). Memory stays bounded: at most `depth` + 1 decoded frames are alive. Errors
    raised by the iterator (typed video errors included) are re-raised in the consumer, and
    stopping early (an exception, a time limit) stops and closes the decoder.
    """
    results = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def put(item):
        while not stop.is_set():
            try:
                results.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        try:
            for frame in frames:
                if not put((frame, None)):
                    return
            put((end, None))
        except BaseException as exc:  # noqa: BLE001 -- handed to the consumer, who re-raises it
            put((end, exc))
        finally:
            close = getattr(frames, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="frame-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item, error = results.get()
            if error is not None:
                raise error
            if item is end:
                return
            yield item
    finally:
        stop.set()
        thread.join()


def _safe_decode(container, stream, path):
    """Decode frames, treating a decoding error mid-file like the end of the file."""
    try:
        yield from container.decode(stream)
    except av.FFmpegError as exc:
        logger.warning("decoding %s stopped early: %s", path, exc)


def _to_decoded(frame, index, start_pts, time_base):
    image = _owned(_upright(frame.to_ndarray(format="bgr24"), _rotation_cw(frame)))
    seconds = float((frame.pts - start_pts) * time_base) if frame.pts is not None else 0.0
    return DecodedFrame(index=index, timestamp=round(seconds, 4), image=image)


def _decode_wanted(container, stream, path, keep_pts):
    """Decode forward from the current position, skipping frames nothing refers to unless wanted.

    skip_frame is read by the decoder per packet (frame threads included), so setting it
    before each packet keeps every wanted frame exact while halving the work on typical
    H.264 with B-frames.
    """
    codec = stream.codec_context
    try:
        for packet in container.demux(stream):
            wanted = packet.size == 0 or packet.pts is None or packet.pts in keep_pts
            codec.skip_frame = "DEFAULT" if wanted else "NONREF"
            yield from packet.decode()
    except av.FFmpegError as exc:
        logger.warning("decoding %s stopped early: %s", path, exc)
    finally:
        codec.skip_frame = "DEFAULT"


def _decode_by_pts(container, stream, path, pts_table, keyframes, wanted, stats):
    time_base = stream.time_base or Fraction(1, 1)
    start = pts_table[0]
    keep_pts = {pts_table[i] for i in wanted}
    current = None  # pts of the last frame decoded
    frames = None
    for index in wanted:
        target = pts_table[index]
        # Seek only if a keyframe lies between where we are and the target: decoding forward
        # from here would pass through it anyway, so jumping there loses nothing.
        k = bisect.bisect_right(keyframes, target) - 1
        key = keyframes[k] if k >= 0 else None
        if frames is None or (key is not None and current is not None and key > current):
            container.seek(key if key is not None else start, stream=stream, backward=True)
            frames = _decode_wanted(container, stream, path, keep_pts)
            stats["seeks"] += 1
            current = None
        found = None
        for frame in frames:
            stats["decoded"] += 1
            if frame.pts is None:
                continue
            current = frame.pts
            if frame.pts >= target:
                found = frame
                break
        if found is None:
            stats["truncated_at"] = index
            return
        yield _to_decoded(found, bisect.bisect_left(pts_table, found.pts), start, time_base)


def _decode_counting(container, stream, path, wanted, stats, total):
    stats.update(total_frames=total, requested=len(wanted), seeks=0, decoded=0, truncated_at=None)
    wanted_set = set(wanted)
    fps = float(stream.average_rate or 25)
    for i, frame in enumerate(_safe_decode(container, stream, path)):
        if i > wanted[-1]:
            return
        stats["decoded"] += 1
        if i in wanted_set:
            image = _owned(_upright(frame.to_ndarray(format="bgr24"), _rotation_cw(frame)))
            yield DecodedFrame(index=i, timestamp=round(i / fps, 4), image=image)
    remaining = [i for i in wanted if i >= stats["decoded"]]
    if remaining:
        stats["truncated_at"] = remaining[0]
