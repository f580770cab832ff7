"""Every kind of bad input gives a correct result or a typed error with a user message, never a crash."""

from unittest import mock

import pytest

from ml_core.errors import NoFaceFound, NotAVideo, NoVideoStream, TruncatedVideo, VideoTooLarge, VideoTooLong
from ml_core.media import video
from ml_core.media.extraction import ExtractConfig, extract_faces, probe
from tests.helpers.malformed import audio_only_mp4, decompression_bomb, png_mov_bomb
from tests.helpers.videos import face_frames, make_blank_video, make_face_video, write_video
from tests.ml_core.media.videos import face_video_h264, write_h264


def assert_user_facing(error):
    assert error.code and error.code != "error"
    assert len(error.user_message) > 20


def test_it_rejects_a_text_file_renamed_to_mp4(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n" * 50)
    with pytest.raises(NotAVideo) as info:
        extract_faces(path)
    assert_user_facing(info.value)


def test_it_rejects_a_zero_byte_file(tmp_path):
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    with pytest.raises(NotAVideo) as info:
        probe(path)
    assert "empty" in info.value.user_message


def test_it_rejects_an_audio_only_file(tmp_path):
    path = audio_only_mp4(tmp_path / "voice.mp4")
    with pytest.raises(NoVideoStream) as info:
        extract_faces(path)
    assert_user_facing(info.value)


def test_it_reports_an_mp4_cut_before_its_index_as_truncated(tmp_path):
    # OpenCV writes the index (moov) at the end: cutting the file loses it.
    path = make_face_video(tmp_path / "face.mp4", count=20)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(TruncatedVideo) as info:
        extract_faces(path)
    assert_user_facing(info.value)


def test_it_uses_what_decodes_from_an_mp4_cut_after_its_index(tmp_path):
    # With the index first (faststart), the header promises frames the file no longer holds.
    path = write_h264(tmp_path / "face.mp4", face_frames(count=40), faststart=True)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.6)])
    extraction = extract_faces(path, ExtractConfig(frames=20))
    assert 0 < len(extraction.frames) < 20
    assert any("holds" in w and "of the 40 frames" in w for w in extraction.warnings)
    assert all(face.crop.shape == (112, 112, 3) for f in extraction.frames for face in f.faces)


def test_it_handles_a_one_frame_video(tmp_path):
    path = make_face_video(tmp_path / "one.mp4", count=1)
    extraction = extract_faces(path)
    assert len(extraction.frames) == 1
    assert len(extraction.track()) == 1
    assert any("only 1 frames" in w for w in extraction.warnings)


def test_it_finds_the_face_in_a_4k_frame(tmp_path):
    path = make_face_video(tmp_path / "uhd.mp4", count=2, size=(3840, 2160), face_size=700, move=False)
    extraction = extract_faces(path)
    assert (extraction.video.width, extraction.video.height) == (3840, 2160)
    top, right, bottom, left = extraction.track()[0][1].box
    # The patch is head and shoulders: the face is about a third of its 700 px.
    assert 150 < right - left < 500 and 150 < bottom - top < 500
    assert 1570 < left < right < 2270 and 730 < top < bottom < 1430  # inside the pasted patch


def test_it_refuses_frames_above_the_pixel_limit(tmp_path):
    path = make_face_video(tmp_path / "face.mp4", count=2)
    with pytest.raises(VideoTooLarge):
        extract_faces(path, ExtractConfig(max_pixels=320 * 200))


def test_it_refuses_frames_above_4k_from_the_declared_size_without_decoding_one(tmp_path, monkeypatch):
    path = decompression_bomb(tmp_path / "bomb.mp4")  # H.264, 8192x8192
    monkeypatch.setattr(video, "_first_frame", mock.Mock(side_effect=AssertionError("decoded a frame")))
    with pytest.raises(VideoTooLarge) as info:
        probe(path)
    assert "8192×8192 pixels, larger than 3840×2160 (4K)" in info.value.user_message
    assert "Re-encode it at 4K or below" in info.value.user_message


def test_it_refuses_png_frames_above_4k_before_decoding_them_at_full_size(tmp_path):
    # FFmpeg decodes a PNG frame just to open the file: only the decoder's pixel bound stops it.
    with pytest.raises(VideoTooLarge) as info:
        probe(png_mov_bomb(tmp_path / "bomb.mov"))
    assert "larger than 3840×2160 (4K)" in info.value.user_message


def test_a_frame_larger_than_its_headers_declare_is_refused_and_never_sampled(tmp_path):
    path = png_mov_bomb(tmp_path / "liar.mov", declared=(64, 64))
    with pytest.raises(VideoTooLarge):
        probe(path)
    stats = {}
    assert list(video.iter_frames(path, 3, stats=stats)) == []
    assert stats["truncated_at"] == 0


def test_it_refuses_videos_above_the_duration_limit(tmp_path):
    path = make_face_video(tmp_path / "face.mp4", count=30, fps=10.0)
    with pytest.raises(VideoTooLong) as info:
        extract_faces(path, ExtractConfig(max_duration=1.0))
    assert "1 seconds" in info.value.user_message


def test_a_video_without_a_face_raises_no_face_found(tmp_path):
    path = make_blank_video(tmp_path / "blank.mp4", count=20)
    with pytest.raises(NoFaceFound) as info:
        extract_faces(path)
    assert "face" in info.value.user_message


def test_a_face_only_in_the_second_half_is_found_and_the_first_half_reported_missing(tmp_path):
    path = face_video_h264(tmp_path / "late.mp4", count=40, face_from=20)
    extraction = extract_faces(path, ExtractConfig(frames=10))
    found = [frame.index for frame, _ in extraction.track()]
    assert found and min(found) >= 20
    assert extraction.missing_frames() == [f.index for f in extraction.frames if f.index < 20]
    for frame in extraction.frames:
        if frame.index < 20:
            assert frame.faces == []  # never the whole frame instead
    assert any("not found" in w for w in extraction.warnings)


def test_a_video_whose_only_frames_are_corrupt_is_truncated(tmp_path):
    path = write_video(tmp_path / "face.mp4", face_frames(count=3))
    data = bytearray(path.read_bytes())
    mdat = data.find(b"mdat")
    data[mdat + 4 : mdat + 4 + 2000] = b"\x00" * 2000  # wipe the frame data, keep the index
    path.write_bytes(bytes(data))
    try:
        extraction = extract_faces(path)
    except (TruncatedVideo, NoFaceFound) as error:
        assert_user_facing(error)
    else:  # the decoder concealed the damage: then the result must still be honest
        assert all(face.crop.shape == (112, 112, 3) for f in extraction.frames for face in f.faces)
