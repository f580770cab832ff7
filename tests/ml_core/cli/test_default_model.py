import hashlib
import math
from pathlib import Path

import numpy as np
import pytest

from ml_core.cli import default_model
from ml_core.model.checkpoints import load_checkpoint
from ml_core.training.evaluation import breakdowns

SHIPPED = Path(default_model.ROOT) / "models" / "default" / "detector.pt"
SHARED = Path(default_model.ROOT).parent / "shared"


def score(video_id, label, source, method, p_fake):
    return {
        "video_id": video_id,
        "label": label,
        "source": source,
        "method": method,
        "p_fake": p_fake,
        "self_blended": False,
    }


def report_of(scores, threshold=0.5):
    y = np.array([s["label"] == "FAKE" for s in scores], dtype=np.int64)
    p = np.array([s["p_fake"] for s in scores])
    return {
        "threshold": threshold,
        "video": {
            "count": len(scores),
            "fakes": int(y.sum()),
            "reals": int((1 - y).sum()),
            "auc": 0.0,
            "average_precision": 0.0,
            "eer": 0.0,
            "balanced_accuracy": float(np.mean((p >= threshold) == y)),
        },
        "breakdown": breakdowns(scores, threshold),
        "no_face": [],
        "scores": scores,
    }


def test_the_false_positive_rate_counts_only_real_clips_at_or_above_the_threshold():
    scores = [
        score("a", "REAL", "s", "real", 0.2),
        score("b", "REAL", "s", "real", 0.6),
        score("c", "REAL", "s", "real", 0.5),
        score("d", "FAKE", "s", "Deepfakes", 0.9),
    ]
    assert default_model.false_positive_rate(scores, 0.5) == pytest.approx(2 / 3)
    assert math.isnan(default_model.false_positive_rate(scores[3:], 0.5))


def test_the_card_figures_separate_faceforensics_methods_from_other_sources():
    scores = [
        score("r1", "REAL", "training/ffpp", "real", 0.1),
        score("r2", "REAL", "training/ffpp", "real", 0.7),
        score("f1", "FAKE", "training/ffpp", "Deepfakes", 0.8),
        score("f2", "FAKE", "training/ffpp", "FaceSwap", 0.4),
        score("x1", "REAL", "videos/real", "real", 0.9),
        score("x2", "FAKE", "training/dfdc", "DFDC", 0.95),
    ]
    slim = default_model.slim_report(report_of(scores))
    ff = slim["faceforensics"]
    assert ff["count"] == 4 and ff["fakes"] == 2
    # Deepfakes (0.8) beats both FF++ reals, FaceSwap (0.4) only one: AUC (2 + 1) / 4.
    assert ff["auc"] == pytest.approx(0.75)
    assert ff["method"]["Deepfakes"]["auc"] == pytest.approx(1.0)
    assert ff["method"]["FaceSwap"]["auc"] == pytest.approx(0.5)
    assert ff["false_positive_rate_real"] == pytest.approx(0.5)
    assert slim["false_positive_rate_real"] == pytest.approx(2 / 3)
    assert {s["video_id"] for s in slim["scores"]} == {s["video_id"] for s in scores}


def test_the_manifest_hash_changes_when_a_listed_clip_changes(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "MANIFEST.tsv").write_text(f"{name}\tclip.mp4\tsha\n")
    before = default_model.manifest_sha256([tmp_path / "a", tmp_path / "b"])
    assert before == hashlib.sha256(b"a\tclip.mp4\tsha\nb\tclip.mp4\tsha\n").hexdigest()
    (tmp_path / "b" / "MANIFEST.tsv").write_text("b\tclip.mp4\tother\n")
    assert default_model.manifest_sha256([tmp_path / "a", tmp_path / "b"]) != before


# Every FaceForensics++ Deepfakes clip of the shipped model's test split whose original (the same
# scene with the original face) is in that split too; the split is made from RECIPE's seed.
HELD_OUT_PAIRS = [
    ("035_036", "035"), ("036_035", "036"), ("055_147", "055"), ("147_055", "147"), ("339_392", "339"),
    ("644_657", "644"), ("657_644", "657"), ("828_830", "828"), ("830_828", "830"),
]  # fmt: skip


@pytest.mark.slow
@pytest.mark.skipif(not SHIPPED.is_file(), reason="no shipped detector in models/default")
@pytest.mark.skipif(not (SHARED / "training").is_dir(), reason="../shared/training (public clips) absent")
def test_the_shipped_detector_scores_most_held_out_deepfakes_above_the_originals_they_came_from():
    from ml_core.inference.analysis import analyse
    from ml_core.inference.predictor import Predictor

    assert load_checkpoint(SHIPPED).config.backbone == default_model.RECIPE[1] == "efficientnet_lite0"
    predictor = Predictor(SHIPPED, device="cpu")
    folder = SHARED / "training"

    def p_fake(path):
        return analyse(path, lambda: predictor).prediction.fake_probability

    above = [
        p_fake(folder / "fake" / f"ffpp_c23_Deepfakes_{fake}.mp4")
        > p_fake(folder / "real" / f"ffpp_c23_original_{real}.mp4")
        for fake, real in HELD_OUT_PAIRS
    ]
    # 6 of 9 on the cached test frames (metrics.json); inference samples its own frames. Chance
    # would put 4 or 5 above.
    assert sum(above) >= 5, above


def test_the_shipped_cross_validation_record_is_of_the_shipped_recipe_and_adds_up():
    import json

    record = json.loads((SHIPPED.parent / "cross_validation.json").read_text())
    # The recipe as shipped, with only its epoch count changed (as the card says).
    assert record["recipe_args"][: len(default_model.RECIPE)] == default_model.RECIPE
    assert record["recipe_args"][len(default_model.RECIPE) :] == ["--epochs", "6"]
    assert sum(record["test_clips"]) == record["clean"]["pooled"]["count"]  # every clip tested once
    for name in ("clean", "c40"):
        aucs = [fold["auc"] for fold in record[name]["per_fold"]]
        assert len(aucs) == record["folds"] == 5
        assert record[name]["summary"]["auc"]["mean"] == pytest.approx(np.mean(aucs))
        assert record[name]["summary"]["auc"]["std"] == pytest.approx(np.std(aucs, ddof=1))
