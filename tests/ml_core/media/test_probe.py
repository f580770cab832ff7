import cv2
import numpy as np
import pytest

from ml_core.media.extraction import probe
from ml_core.media.video import iter_frames
from tests.helpers.videos import make_face_video
from tests.ml_core.media.videos import numbered_frames, write_h264


def test_it_describes_a_generated_video(tmp_path):
    info = probe(make_face_video(tmp_path / "face.mp4", count=25, size=(320, 240), fps=10.0))
    assert (info.width, info.height, info.frame_count, info.rotation) == (320, 240, 25, 0)
    assert info.fps == pytest.approx(10.0)
    assert info.duration == pytest.approx(2.5, abs=0.15)
    assert info.codec == "mpeg4"
    assert info.has_audio is False
    assert set(info.to_dict()) >= {"path", "duration", "fps", "frame_count", "codec", "container"}


def test_it_trusts_the_content_not_the_extension(tmp_path):
    path = write_h264(tmp_path / "clip.mp4", numbered_frames(5)).rename(tmp_path / "clip.txt")
    assert probe(path).codec == "h264"


@pytest.mark.parametrize("display_rotation", [90, -90, 180])
def test_it_reports_rotation_and_returns_upright_frames_like_opencv(tmp_path, display_rotation):
    frames = numbered_frames(4, size=(64, 48))
    for frame in frames:
        frame[:12, :12] = (0, 0, 255)  # a red corner shows which way is up
    path = write_h264(tmp_path / "phone.mp4", frames, rotation=display_rotation)

    info = probe(path)
    expected_cw = (-display_rotation) % 360
    assert info.rotation == expected_cw
    assert (info.width, info.height) == ((48, 64) if expected_cw in (90, 270) else (64, 48))

    ours = next(iter(iter_frames(path, 10))).image
    cap = cv2.VideoCapture(str(path))  # OpenCV auto-rotates (CAP_PROP_ORIENTATION_AUTO)
    ok, opencv = cap.read()
    cap.release()
    assert ok and ours.shape == opencv.shape
    assert np.abs(ours.astype(int) - opencv.astype(int)).mean() < 2
