"""Extra test videos for the media pipeline, written with PyAV (H.264, rotation, VFR, audio)."""

from fractions import Fraction

import av
import numpy as np

from tests.helpers.videos import face_frames


def write_h264(path, frames, fps=10, rotation=None, gop=None, pts=None, faststart=False):
    """BGR frames -> H.264 MP4 with B-frames. `pts`: explicit timestamps (1/1000 s) for VFR."""
    height, width = frames[0].shape[:2]
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "bf": "2", "crf": "18"}
        if gop:
            stream.codec_context.gop_size = gop
        if pts is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            if pts is not None:
                frame.pts, frame.time_base = pts[i], Fraction(1, 1000)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def numbered_frames(count, size=(64, 48)):
    """Frames whose mean brightness encodes their number (frame i has value 10 + 2 * i)."""
    width, height = size
    return [np.full((height, width, 3), 10 + 2 * i, np.uint8) for i in range(count)]


def face_video_h264(path, count=30, size=(320, 240), fps=10, **kwargs):
    return write_h264(path, face_frames(count=count, size=size, **kwargs), fps=fps)
