import json

import cv2

from ml_core.cli import extract
from tests.helpers.videos import make_face_video


def test_it_writes_jpeg_crops_and_a_json_report(tmp_path, capsys):
    video = make_face_video(tmp_path / "face.mp4", count=30)
    out = tmp_path / "crops"
    assert extract.main([str(video), "--frames", "10", "--out", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)

    assert report["video"]["frame_count"] == 30
    assert len(report["sampled_indices"]) == 10 and report["sampled_indices"][-1] == 29
    assert len(report["timestamps"]) == 10
    assert report["identities"][0]["frame_count"] == 10 and report["missing_frames"] == []
    assert set(report["timings"]) >= {"probe", "decode", "detect", "track", "crop", "total"}
    assert report["peak_rss_mb"] > 0
    assert len(report["frames"][0]["faces"][0]["box"]) == 4
    assert len(report["crops"]) == 10
    crop = cv2.imread(report["crops"][0])
    assert crop.shape == (112, 112, 3)


def test_first_n_strategy_from_the_command_line(tmp_path, capsys):
    video = make_face_video(tmp_path / "face.mp4", count=30)
    assert extract.main([str(video), "--frames", "10", "--strategy", "first-n", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["sampled_indices"] == list(range(10))


def test_the_face_detector_and_contrast_are_chosen_on_the_command_line_and_reported(tmp_path, capsys):
    video = make_face_video(tmp_path / "face.mp4", count=30)
    assert (
        extract.main([str(video), "--frames", "10", "--detector", "hog", "--contrast", "off", "--json"]) == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert (report["stats"]["face_detector"], report["stats"]["contrast"]) == ("hog", "off")
    assert report["frames"][0]["faces"][0]["detector"] == "hog"


def test_a_bad_file_prints_the_user_message_and_exits_2(tmp_path, capsys):
    path = tmp_path / "notes.mp4"
    path.write_text("hello")
    assert extract.main([str(path), "--json"]) == 2
    report = json.loads(capsys.readouterr().out)
    assert report["error"] == "not_a_video" and "not a readable video" in report["message"]


def test_an_out_of_range_frame_count_exits_2(tmp_path, capsys):
    video = make_face_video(tmp_path / "face.mp4", count=5)
    assert extract.main([str(video), "--frames", "5"]) == 2
    assert "between 10 and 100" in capsys.readouterr().err
