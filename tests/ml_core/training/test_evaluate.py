import json

import pytest

from ml_core.cli.evaluate import main as evaluate_main
from ml_core.training.evaluation import breakdowns, compare
from tests.helpers.checkpoints import make_tiny_checkpoint
from tests.helpers.videos import make_blank_video, make_face_video


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    (root / "real").mkdir()
    (root / "fake" / "faceswap").mkdir(parents=True)
    make_face_video(root / "real" / "a.mp4", count=10, seed=0)
    make_face_video(root / "real" / "b.mp4", count=10, seed=1, face_size=140)
    make_blank_video(root / "real" / "empty.mp4", count=10)
    make_face_video(root / "fake" / "faceswap" / "c.mp4", count=10, seed=2, face_size=150)
    return root


def test_it_writes_a_report_with_plots_lists_faceless_videos_and_compares(dataset, tmp_path):
    first = make_tiny_checkpoint(tmp_path / "first.pt", sequence_length=4, seed=0, verdict="FAKE")
    second = make_tiny_checkpoint(tmp_path / "second.pt", sequence_length=4, seed=1, verdict="REAL")
    out = tmp_path / "report"
    evaluate_main(
        [
            "--checkpoint",
            str(first),
            "--compare",
            str(second),
            "--data",
            str(dataset),
            "--out",
            str(out),
            "--subset",
            "all",
            "--cache-frames",
            "10",
            "--cache-workers",
            "1",
            "--bootstrap",
            "50",
            "--no-progress",
        ]
    )
    report = json.loads((out / "report.json").read_text())
    assert report["videos"] == 4 and report["scored"] == 3
    assert report["no_face"]["count"] == 1
    assert report["no_face"]["videos"][0]["video_id"] == "real/empty.mp4"
    assert report["no_face"]["videos"][0]["status"] == "no_face"
    video = report["video"]
    # The first checkpoint calls everything FAKE: both reals wrong, the fake right.
    assert video["confusion_matrix"] == [[0, 2], [0, 1]]
    assert video["accuracy"] == pytest.approx(1 / 3)
    assert video["balanced_accuracy"] == pytest.approx(0.5)
    for key in ("auc", "average_precision", "eer", "f1"):
        assert key in video
    assert "auc" in report["frame"]
    assert set(report["breakdown"]["method"]) == {"faceswap"}
    assert set(report["breakdown"]["source"]) == {"real", "fake"}
    mcnemar = report["compare"]["mcnemar"]
    # The second calls everything REAL: it is right exactly where the first is wrong.
    assert (mcnemar["only_a_right"], mcnemar["only_b_right"]) == (1, 2)
    assert "low" in report["compare"]["auc_difference"]
    for name in ("roc.png", "confusion_matrix.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_it_needs_a_split_file_to_pick_a_subset(dataset, tmp_path):
    checkpoint = make_tiny_checkpoint(tmp_path / "c.pt", sequence_length=4)
    with pytest.raises(SystemExit, match="--split"):
        evaluate_main(["--checkpoint", str(checkpoint), "--data", str(dataset), "--out", str(tmp_path / "r")])


def score(label, p, method="real", source="x", video_id="v", self_blended=False):
    return dict(
        label=label, p_fake=p, method=method, source=source, video_id=video_id, self_blended=self_blended
    )


def test_breakdowns_score_each_method_against_all_reals():
    scores = [
        score("REAL", 0.1, source="youtube"),
        score("REAL", 0.6, source="youtube"),
        score("FAKE", 0.9, "Deepfakes", "youtube"),
        score("FAKE", 0.2, "NeuralTextures", "youtube"),
    ]
    result = breakdowns(scores, threshold=0.5)
    assert result["method"]["Deepfakes"]["auc"] == pytest.approx(1.0)
    assert result["method"]["NeuralTextures"]["auc"] == pytest.approx(0.5)
    assert result["method"]["NeuralTextures"]["count"] == 3
    assert result["source"]["youtube"]["accuracy"] == pytest.approx(0.5)


def test_compare_pairs_clips_by_video_and_kind():
    first = {"threshold": 0.5, "scores": [score("REAL", 0.2, video_id="a"), score("FAKE", 0.9, video_id="b")]}
    second = {
        "threshold": 0.5,
        "scores": [
            score("REAL", 0.7, video_id="a"),
            score("FAKE", 0.8, video_id="b"),
            score("FAKE", 0.8, video_id="c"),
        ],
    }
    result = compare(first, second, bootstrap=20, seed=0)
    assert result["videos"] == 2 and result["only_in_second"] == 1
    assert result["mcnemar"]["only_a_right"] == 1 and result["mcnemar"]["only_b_right"] == 0


def test_a_video_that_cannot_be_re_encoded_is_listed_and_the_others_are_scored(dataset, tmp_path):
    data = tmp_path / "data"
    (data / "real").mkdir(parents=True)
    (data / "fake" / "faceswap").mkdir(parents=True)
    for name in ("real/a.mp4", "fake/faceswap/c.mp4"):
        (data / name).write_bytes((dataset / name).read_bytes())
    (data / "real" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"junk" * 100)
    checkpoint = make_tiny_checkpoint(tmp_path / "tiny.pt", sequence_length=4, seed=0, verdict="FAKE")
    out = tmp_path / "report"
    report = evaluate_main(
        ["--checkpoint", str(checkpoint), "--data", str(data), "--out", str(out), "--subset", "all"]
        + ["--cache-frames", "10", "--cache-workers", "1", "--recompress", "c40", "--no-progress"]
    )
    assert (report["videos"], report["scored"]) == (3, 2)
    broken = [v for v in report["no_face"]["videos"] if v["video_id"] == "real/broken.mp4"]
    assert broken and broken[0]["status"] == "not_recompressed" and broken[0]["message"]
    assert json.loads((out / "report.json").read_text())["scored"] == 2
