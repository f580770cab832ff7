"""python -m ml_core.cli.bench: each mode runs and prints figures that describe the clip it ran on."""

import json
import sys
import types

import av
import pytest

from ml_core.cli import bench
from ml_core.model.checkpoints import load_checkpoint
from tests.helpers.checkpoints import make_tiny_checkpoint
from tests.helpers.videos import make_face_video


def test_bench_inference_times_the_given_checkpoint_on_the_cpu(tmp_path, capsys):
    checkpoint = make_tiny_checkpoint(tmp_path / "tiny.pt")
    args = ["--inference", "--checkpoint", str(checkpoint), "--frames", "10", "--videos", "2"]
    bench.main(args + ["--repeats", "1", "--devices", "cpu", "--json"])
    (cpu,) = json.loads(capsys.readouterr().out)["results"]
    assert (cpu["device"], cpu["model"], cpu["frames"], cpu["videos_batched"]) == ("cpu", "tiny", 10, 2)
    assert cpu["fps_one_video"] > 0 and cpu["fps_batched"] > 0
    # The figures name the size the checkpoint really runs at, not a fixed one.
    assert (cpu["backbone"], cpu["image_size"]) == ("tiny", load_checkpoint(checkpoint).config.image_size)


def test_bench_delegates_inference_benchmarks(monkeypatch):
    calls = []
    fake = types.ModuleType("ml_core.bench.inference")
    fake.main = lambda argv: calls.append(argv) or 0
    monkeypatch.setitem(sys.modules, "ml_core.bench.inference", fake)
    import ml_core.bench

    monkeypatch.setattr(ml_core.bench, "inference", fake, raising=False)
    assert bench.main(["--inference", "clip.mp4", "--frames", "20"]) == 0
    assert calls == [["clip.mp4", "--frames", "20"]]


def test_bench_compares_both_pipelines_on_a_clip(tmp_path, capsys):
    video = make_face_video(tmp_path / "face.mp4", count=30)
    assert bench.main([str(video), "--frames", "10", "--json", str(tmp_path / "r.json")]) == 0
    printed = capsys.readouterr().out
    assert "speed ratio" in printed
    (row,) = json.loads((tmp_path / "r.json").read_text())
    assert row["ours"]["main_found"] == 10 and row["reference"]["sampled"] == 10
    assert row["reference"]["decoded_into_ram"] == 30
    assert row["ours"]["peak_rss_mb"] > 0


def test_bench_compares_face_detectors_on_every_clip_of_a_folder(tmp_path, capsys):
    folder = tmp_path / "clips"
    (folder / "nested").mkdir(parents=True)
    make_face_video(folder / "a.mp4", count=30)
    make_face_video(folder / "nested" / "b.mp4", count=30)
    args = [str(folder), "--detectors", "hog:off", "hog+mtcnn", "--one-process", "--frames", "10"]
    assert bench.main(args + ["--pipelines", "ours", "--json", str(tmp_path / "d.json")]) == 0
    rows = json.loads((tmp_path / "d.json").read_text())
    assert sorted(row["video"].rsplit("/", 1)[-1] for row in rows) == ["a.mp4", "b.mp4"]
    for row in rows:
        assert row["hog:off"]["main_found"] == row["hog:off"]["sampled"] == 10
        assert row["hog+mtcnn:auto"]["main_found"] == 10
    assert "main face in 20/20 sampled frames" in capsys.readouterr().out


def test_bench_refuses_an_unknown_detector(capsys):
    with pytest.raises(SystemExit):
        bench.main(["clips", "--detectors", "sonar"])
    assert "use DETECTOR[:CONTRAST]" in capsys.readouterr().err


def test_make_clip_loops_a_short_clip_into_one_of_the_asked_length(tmp_path):
    source = make_face_video(tmp_path / "short.mp4", count=12)
    long = tmp_path / "long.mp4"
    assert bench.main(["--make-clip", str(source), str(long), "--seconds", "2"]) == 0
    with av.open(str(source)) as short_in, av.open(str(long)) as long_in:
        rate = short_in.streams.video[0].average_rate
        frames = sum(1 for _ in long_in.decode(video=0))
        assert long_in.streams.video[0].width == short_in.streams.video[0].width
    assert frames == round(float(rate) * 2)
