"""Hostile files for the bad-input tests: each function writes one file and returns its path.

Everything is generated here (no fixtures on disk): renamed text/HTML/images, empty and
truncated MP4s, audio-only MP4s, MP4s whose headers lie about their duration, frame count or
size, decompression bombs (a tiny file that decodes to huge frames), polyglots and GIFs.
"""

import io
import struct
import zipfile
from fractions import Fraction
from pathlib import Path

import numpy as np

from tests.helpers.videos import make_face_video

HTML_PAYLOAD = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>\n"


def write_bytes(path, data):
    path = Path(path)
    path.write_bytes(data)
    return path


def text_file(path):
    return write_bytes(path, b"This is a plain text file wearing an .mp4 extension.\n" * 20)


def html_file(path):
    return write_bytes(path, HTML_PAYLOAD * 10)


def png_image(path, size=(64, 48)):
    import cv2

    image = np.full((size[1], size[0], 3), 200, np.uint8)
    ok, encoded = cv2.imencode(".png", image)
    assert ok
    return write_bytes(path, encoded.tobytes())


def jpeg_image(path, size=(64, 48)):
    import cv2

    image = np.full((size[1], size[0], 3), 120, np.uint8)
    ok, encoded = cv2.imencode(".jpg", image)
    assert ok
    return write_bytes(path, encoded.tobytes())


def empty_file(path):
    return write_bytes(path, b"")


def truncated_mp4(path, keep_fraction=0.5, count=30):
    """A face MP4 with its index (`moov`) first and the frame data (`mdat`) cut in half.

    The header promises `count` frames whose bytes are missing, like an interrupted download.
    """
    full = Path(path).with_suffix(".full.mp4")
    make_face_video(full, count=count)
    data = full.read_bytes()
    full.unlink()
    boxes = {
        kind: (offset, size) for kind, offset, size, _h in iter_boxes(data) if kind in (b"moov", b"mdat")
    }
    (moov_at, moov_size), (mdat_at, mdat_size) = boxes[b"moov"], boxes[b"mdat"]
    moov = bytearray(data[moov_at : moov_at + moov_size])
    if moov_at > mdat_at:  # move the index in front of the data, as "fast start" files have it
        _shift_chunk_offsets(moov, moov_size)
        head = data[:mdat_at] + bytes(moov)
    else:
        head = data[:mdat_at]
    mdat = data[mdat_at : mdat_at + mdat_size]
    return write_bytes(path, head + mdat[: max(16, int(len(mdat) * keep_fraction))])


def _shift_chunk_offsets(moov, shift):
    """Add `shift` to every chunk offset in `stco`/`co64` (after moving bytes before `mdat`)."""
    for box, offset, _size, header in iter_boxes(moov):
        if box in (b"stco", b"co64"):
            at = offset + header + 4
            entries = struct.unpack(">I", moov[at : at + 4])[0]
            width, fmt = (4, ">I") if box == b"stco" else (8, ">Q")
            for i in range(entries):
                pos = at + 4 + i * width
                moov[pos : pos + width] = struct.pack(
                    fmt, struct.unpack(fmt, moov[pos : pos + width])[0] + shift
                )


def header_only_mp4(path, count=30):
    """Only the first 48 bytes (the `ftyp` box and a little more): no `moov` at all."""
    full = Path(path).with_suffix(".full.mp4")
    make_face_video(full, count=count)
    data = full.read_bytes()
    full.unlink()
    return write_bytes(path, data[:48])


def audio_only_mp4(path, seconds=1.0, rate=44100):
    """An MP4 with a single AAC audio stream and no video stream."""
    import av

    path = Path(path)
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=rate)
        stream.layout = "mono"
        samples = int(seconds * rate)
        tone = (0.2 * np.sin(np.arange(samples) * 2 * np.pi * 440 / rate)).astype(np.float32)
        chunk = 1024
        for start in range(0, samples, chunk):
            piece = tone[start : start + chunk].reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(piece, format="fltp", layout="mono")
            frame.sample_rate = rate
            frame.pts = start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def encoded_video(path, width, height, count=2, fps=10, codec="libx264", color=100):
    """A real video of flat frames; flat frames compress to almost nothing at any size."""
    import av

    path = Path(path)
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if codec == "libx264":
            stream.options = {"preset": "ultrafast", "crf": "51"}
        plane = np.full((height, width, 3), color, np.uint8)
        for i in range(count):
            frame = av.VideoFrame.from_ndarray(plane, format="bgr24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def decompression_bomb(path, width=8192, height=8192, count=3):
    """A few-KB H.264 file that decodes to 8192x8192 frames (~200 MB each as BGR)."""
    return encoded_video(path, width, height, count=count)


def png_mov_bomb(path, side=12000, count=3, declared=None):
    """A MOV of `count` side x side PNG frames: ~0.5 MB on disk, 144 MB per frame once decoded.

    One flat grey frame is encoded once and its packet muxed `count` times (PNG frames are all
    key frames), so making the file costs one encode. `declared` (width, height): the headers
    claim that size instead, so only decoding a frame reveals the real one.
    """
    import av

    path = Path(path)
    with av.open(str(path), "w", format="mov") as container:
        stream = container.add_stream("png", rate=1)
        stream.width, stream.height, stream.pix_fmt = side, side, "gray"
        frame = av.VideoFrame.from_ndarray(np.zeros((side, side), np.uint8), format="gray")
        first = [*stream.encode(frame), *stream.encode()][0]
        for i in range(count):
            packet = av.Packet(bytes(first))
            packet.stream, packet.time_base, packet.pts, packet.dts = stream, first.time_base, i, i
            packet.is_keyframe = True
            container.mux(packet)
    if declared:
        write_bytes(path, declare_size(path.read_bytes(), *declared))
    return path


def png_mov_bomb_behind_small_headers(path):
    """The PNG bomb with headers claiming 64x64 frames."""
    return png_mov_bomb(path, declared=(64, 64))


# --- MP4 header surgery: make the container lie while the payload stays small -------------

CONTAINER_BOXES = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"udta", b"dinf"}


def iter_boxes(data, start=0, end=None):
    """Yield (type, offset, size, header_size) for every box, descending into containers."""
    end = len(data) if end is None else end
    offset = start
    while offset + 8 <= end:
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        header = 8
        if size == 1:
            size = struct.unpack(">Q", data[offset + 8 : offset + 16])[0]
            header = 16
        elif size == 0:
            size = end - offset
        if size < header:
            return
        yield kind, offset, size, header
        if kind in CONTAINER_BOXES:
            yield from iter_boxes(data, offset + header, offset + size)
        offset += size


def _patch_duration(data, kind, seconds):
    """Rewrite the duration of every `mvhd`/`mdhd`/`tkhd` box so it claims `seconds`."""
    movie_timescale = None
    for box, offset, _size, header in iter_boxes(data):
        if box != kind:
            continue
        body = offset + header
        version = data[body]
        if kind in (b"mvhd", b"mdhd"):
            # version 0: creation(4) modification(4) timescale(4) duration(4)
            ts_at = body + 4 + (16 if version == 1 else 8)
            timescale = struct.unpack(">I", data[ts_at : ts_at + 4])[0]
            if kind == b"mvhd":
                movie_timescale = timescale
            dur_at = ts_at + 4
            value = int(seconds * timescale)
        else:  # tkhd: creation, modification, track id, reserved, duration (movie timescale)
            dur_at = body + 4 + (28 if version == 1 else 20)
            value = int(seconds * (movie_timescale or 1000))
        if version == 1:
            data[dur_at : dur_at + 8] = struct.pack(">Q", value)
        else:
            data[dur_at : dur_at + 4] = struct.pack(">I", min(value, 0xFFFFFFFF))
    return data


def long_declared_duration_mp4(path, seconds=10 * 3600, count=10):
    """A tiny real MP4 whose headers (and timestamps) claim `seconds` of video."""
    full = Path(path).with_suffix(".src.mp4")
    make_face_video(full, count=count, size=(160, 120), face_size=100)
    data = bytearray(full.read_bytes())
    full.unlink()
    for kind in (b"mvhd", b"tkhd", b"mdhd"):
        _patch_duration(data, kind, seconds)
    movie_scale = _timescale(data, b"mvhd")
    for box, offset, _size, header in iter_boxes(data):
        if box == b"elst":  # the edit list would otherwise cut the timeline back to the real length
            body = offset + header
            version, entries = data[body], struct.unpack(">I", data[body + 4 : body + 8])[0]
            if version == 0 and entries:
                data[body + 8 : body + 12] = struct.pack(">I", min(int(seconds * movie_scale), 0xFFFFFFFF))
    # Stretch the sample timing too, so demuxers that trust `stts` over the headers agree.
    for box, offset, _size, header in iter_boxes(data):
        if box == b"stts":
            body = offset + header
            entries = struct.unpack(">I", data[body + 4 : body + 8])[0]
            total = sum(
                struct.unpack(">I", data[body + 8 + 8 * i : body + 12 + 8 * i])[0] for i in range(entries)
            )
            mdhd_scale = _timescale(data, b"mdhd")
            delta = max(1, int(seconds * mdhd_scale / max(total, 1)))
            for i in range(entries):
                data[body + 12 + 8 * i : body + 16 + 8 * i] = struct.pack(">I", min(delta, 0xFFFFFFFF))
    return write_bytes(path, bytes(data))


def _timescale(data, kind):
    for box, offset, _size, header in iter_boxes(data):
        if box == kind:
            body = offset + header
            version = data[body]
            ts_at = body + 4 + (16 if version == 1 else 8)
            return struct.unpack(">I", data[ts_at : ts_at + 4])[0]
    raise ValueError(f"no {kind!r} box")


def absurd_frame_count_mp4(path, count=10, claimed=2_000_000_000):
    """A tiny MP4 whose timing table claims `claimed` frames (it holds `count`).

    Demuxers report the lie (OpenCV and PyAV both say 2e9 frames) yet the file still opens.
    """
    full = Path(path).with_suffix(".src.mp4")
    make_face_video(full, count=count, size=(160, 120), face_size=100)
    data = bytearray(full.read_bytes())
    full.unlink()
    for box, offset, _size, header in iter_boxes(data):
        if box == b"stts":
            body = offset + header
            data[body + 8 : body + 12] = struct.pack(">I", claimed)  # first entry's sample count
    return write_bytes(path, bytes(data))


def absurd_resolution_mp4(path, width=65535, height=65535, count=10):
    """A tiny MP4 whose track and sample headers claim a 65535x65535 picture."""
    full = Path(path).with_suffix(".src.mp4")
    make_face_video(full, count=count, size=(160, 120), face_size=100)
    data = full.read_bytes()
    full.unlink()
    return write_bytes(path, declare_size(data, width, height))


def declare_size(data, width, height):
    """An MP4/MOV's bytes with its track and sample headers claiming a width x height picture."""
    data = bytearray(data)
    for box, offset, size, header in iter_boxes(data):
        if box == b"tkhd":
            end = offset + size
            # The last 8 bytes of tkhd are width and height as 16.16 fixed point.
            data[end - 8 : end] = struct.pack(">II", width << 16, height << 16)
        if box == b"stsd":
            entry = offset + header + 8  # version/flags(4) + entry count(4)
            # Visual sample entry: size(4) type(4) reserved(6) dref(2) pre-defined etc.(16), w, h
            wh_at = entry + 8 + 6 + 2 + 16
            data[wh_at : wh_at + 4] = struct.pack(">HH", width, height)
    return bytes(data)


def polyglot_mp4(path, count=20):
    """A valid face MP4 that is also a ZIP archive and carries an HTML/JS payload.

    The HTML sits in a `free` box right after `ftyp` (early enough for content sniffers to see
    it); the ZIP is appended at the end (ZIP readers start from the end of the file).
    """
    full = Path(path).with_suffix(".src.mp4")
    make_face_video(full, count=count)
    data = full.read_bytes()
    full.unlink()
    ftyp_size = struct.unpack(">I", data[:4])[0]
    free_box = struct.pack(">I4s", 8 + len(HTML_PAYLOAD), b"free") + HTML_PAYLOAD
    # Inserting bytes before `moov`/`mdat` shifts the chunk offsets; fix `stco`/`co64`.
    body = bytearray(data[ftyp_size:])
    _shift_chunk_offsets(body, len(free_box))
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("index.html", HTML_PAYLOAD)
    return write_bytes(path, data[:ftyp_size] + free_box + bytes(body) + archive.getvalue())


def animated_gif(path, count=10, size=(96, 96)):
    """A real animated GIF (ffmpeg can decode it as a video; the service must still refuse it)."""
    from PIL import Image

    from tests.helpers.videos import face_frames

    frames = [Image.fromarray(f[:, :, ::-1]) for f in face_frames(count=count, size=size, face_size=80)]
    frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return Path(path)


HOSTILE_NAMES = {
    "dotdot": "../../../../etc/passwd.mp4",
    "nul": "clip\x00.php.mp4",
    "unicode": "vidéo_😀_\u202egnp.mp4",  # includes a right-to-left override
    "long": ("a" * 296) + ".mp4",  # 300 characters
    "html": '<img src=x onerror="alert(1)">.mp4',
}
