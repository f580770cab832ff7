"""The decoder runs ahead of face detection in a thread; it must stay invisible otherwise."""

import threading
import time

import pytest

from ml_core.errors import TruncatedVideo
from ml_core.media.video import iter_frames, prefetched
from tests.ml_core.media.videos import numbered_frames, write_h264


def _threads():
    return {t for t in threading.enumerate() if t.name == "frame-prefetch"}


def test_prefetched_frames_equal_the_decoder_s_frames_in_order(tmp_path):
    path = write_h264(tmp_path / "numbered.mp4", numbered_frames(40))
    direct = list(iter_frames(path, 12))
    ahead = list(prefetched(iter_frames(path, 12)))
    assert [f.index for f in ahead] == [f.index for f in direct]
    assert all((a.image == d.image).all() for a, d in zip(ahead, direct))


def test_an_error_in_the_decoder_reaches_the_consumer_after_the_frames_before_it():
    def frames():
        yield 1
        yield 2
        raise TruncatedVideo("stopped at frame 3")

    seen = []
    with pytest.raises(TruncatedVideo, match="frame 3"):
        for item in prefetched(frames()):
            seen.append(item)
    assert seen == [1, 2]
    assert not _threads()


def test_the_decoder_stays_at_most_depth_frames_ahead():
    produced = []

    def frames():
        for i in range(100):
            produced.append(i)
            yield i

    stream = prefetched(frames(), depth=2)
    assert next(stream) == 0
    time.sleep(0.3)  # ample time for an unbounded producer to run through all 100
    # One handed over, two queued, one waiting to be queued.
    assert len(produced) <= 4
    stream.close()


def test_stopping_early_closes_the_decoder_and_ends_the_thread():
    closed = threading.Event()

    def frames():
        try:
            yield from range(1000)
        finally:
            closed.set()

    stream = prefetched(frames())
    assert next(stream) == 0
    stream.close()
    assert closed.is_set()
    assert not _threads()
