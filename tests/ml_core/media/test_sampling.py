import av
import numpy as np
import pytest

from ml_core.media.extraction import ExtractConfig, extract_faces
from ml_core.media.video import iter_frames, uniform_indices
from tests.helpers.videos import make_face_video
from tests.ml_core.media.videos import numbered_frames, write_h264


def decode_all(path):
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]


def test_uniform_indices_cover_the_whole_video():
    assert uniform_indices(100, 10) == [0, 11, 22, 33, 44, 55, 66, 77, 88, 99]
    assert uniform_indices(5, 10) == [0, 1, 2, 3, 4]


def test_it_rejects_frame_counts_outside_10_to_100():
    for frames in (9, 101):
        with pytest.raises(ValueError, match="between 10 and 100"):
            ExtractConfig(frames=frames)
    with pytest.raises(ValueError):
        ExtractConfig(strategy="random")


@pytest.mark.parametrize("strategy", ["uniform", "first-n"])
def test_sampled_frames_are_exactly_the_frames_at_their_index(tmp_path, strategy):
    # Short GOPs and B-frames: sampling seeks to keyframes and skips unreferenced frames.
    path = write_h264(
        tmp_path / "gop.mp4", [f + np.uint8(i % 7) for i, f in enumerate(numbered_frames(90))], gop=12
    )
    stats = {}
    sampled = list(iter_frames(path, 10, strategy, stats=stats))
    reference = decode_all(path)

    expected = uniform_indices(90, 10) if strategy == "uniform" else list(range(10))
    assert [s.index for s in sampled] == expected
    for s in sampled:
        assert np.array_equal(s.image, reference[s.index])
        assert s.timestamp == pytest.approx(s.index / 10.0, abs=1e-3)
    assert stats["decoded"] < 90
    if strategy == "uniform":
        assert stats["seeks"] > 1


def test_it_samples_a_variable_frame_rate_video_evenly_in_time(tmp_path):
    # A burst of frames early on, then a slow stretch: index-uniform sampling would crowd the burst.
    pts = [0, 40, 80, 120, 160, 200, 240, 280, 320, 360] + [1000 + 500 * i for i in range(10)]
    path = write_h264(tmp_path / "vfr.mp4", numbered_frames(20), pts=pts)
    sampled = list(iter_frames(path, 10))
    times = [s.timestamp for s in sampled]
    assert times == sorted(times)
    assert [round(t * 1000) for t in times] == [pts[s.index] for s in sampled]
    assert sum(t < 0.5 for t in times) <= 2  # the burst is 0.36 s of a 5.5 s video


def test_a_video_shorter_than_n_uses_every_frame_and_says_so(tmp_path):
    path = make_face_video(tmp_path / "short.mp4", count=6)
    extraction = extract_faces(path, ExtractConfig(frames=20))
    assert [f.index for f in extraction.frames] == list(range(6))
    assert any("only 6 frames" in w for w in extraction.warnings)


def test_first_n_takes_the_first_frames_for_parity_with_the_reference(tmp_path):
    path = make_face_video(tmp_path / "face.mp4", count=40)
    extraction = extract_faces(path, ExtractConfig(frames=10, strategy="first-n"))
    assert [f.index for f in extraction.frames] == list(range(10))
    uniform = extract_faces(path, ExtractConfig(frames=10))
    assert uniform.frames[-1].index == 39
