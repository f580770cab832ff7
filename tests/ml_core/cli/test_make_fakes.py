import json

from ml_core.cli import make_fakes
from ml_core.media.compression import PRESETS, write_video
from tests.helpers.videos import face_frames


def test_it_makes_fakes_from_a_real_folder_and_prints_a_summary(tmp_path, capsys):
    for number, name in enumerate(("anna", "bert")):
        frames = face_frames(count=20, face_size=240, seed=number)
        write_video(frames, tmp_path / "data" / "real" / f"{name}.mp4", PRESETS["c23"], rate=10)
    out = tmp_path / "out"
    argv = ["--data", str(tmp_path / "data"), "--out", str(out), "--kinds", "swap,mouth"]
    argv += ["--compressions", "c40", "--segment-seconds", "1.5", "--limit", "1"]
    assert make_fakes.main(argv) == 0
    summary = capsys.readouterr().out
    assert summary.startswith("1 targets: 1 mouth, 1 swap (3 files)")
    assert json.loads((out / "summary.json").read_text())["fakes"] == {"swap": 1, "mouth": 1}
    assert (out / "contact_swap.png").is_file() and (out / "contact_mouth.png").is_file()


def test_it_refuses_an_unknown_kind(tmp_path, capsys):
    (tmp_path / "real").mkdir()
    argv = ["--data", str(tmp_path), "--out", str(tmp_path / "out"), "--kinds", "swap,morph"]
    assert make_fakes.main(argv) == 2
    assert "kinds must be some of swap, mouth" in capsys.readouterr().err


def test_with_a_split_and_a_subset_only_that_splits_clips_are_targets(tmp_path, capsys):
    from ml_core.training.splits import Split, save_split

    for number, name in enumerate(("anna", "bert", "cara")):
        frames = face_frames(count=20, face_size=240, seed=number)
        write_video(frames, tmp_path / "data" / "real" / f"{name}.mp4", PRESETS["c23"], rate=10)
    split = {"real/anna.mp4": "train", "real/bert.mp4": "train", "real/cara.mp4": "test"}
    save_split(Split(split, 0, {}, True), tmp_path / "split.json")
    out = tmp_path / "out"
    argv = ["--data", str(tmp_path / "data"), "--out", str(out), "--kinds", "mouth", "--compressions", "c40"]
    argv += ["--segment-seconds", "1.5", "--split", str(tmp_path / "split.json"), "--subset", "test"]
    assert make_fakes.main(argv) == 0
    assert "3 real clips, 1 targets" in capsys.readouterr().err
    rows = (out / "MANIFEST.tsv").read_text().splitlines()[1:]
    assert rows and all("\treal/cara.mp4\t" in row and row.split("\t")[15] == "test" for row in rows)
