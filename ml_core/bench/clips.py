"""Long test clips made from short ones, for benchmarks of long uploads."""


def make_clip(src, dst, seconds):
    """Loop `src` into an H.264 clip of `seconds` (same size and frame rate)."""
    import av

    with av.open(str(src)) as inp:
        stream = inp.streams.video[0]
        fps = stream.average_rate
        frames = []
        for frame in inp.decode(stream):
            frames.append(frame.to_ndarray(format="yuv420p"))
            if len(frames) >= int(fps * 10):  # at most 10 s of source in memory
                break
        width, height = stream.width, stream.height
    with av.open(str(dst), "w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"preset": "veryfast", "crf": "23"}
        total = int(round(float(fps) * seconds))
        for i in range(total):
            k = i % (2 * len(frames) - 2) if len(frames) > 1 else 0
            k = k if k < len(frames) else 2 * len(frames) - 2 - k  # ping-pong: no jump at the loop
            frame = av.VideoFrame.from_ndarray(frames[k], format="yuv420p")
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
    return dst
