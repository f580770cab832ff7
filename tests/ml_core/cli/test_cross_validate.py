import json

import pytest

from ml_core.cli import cross_validate
from ml_core.training.splits import Split, save_split


def report(scores, threshold):
    """A slimmed test report (default_model.slim_report's shape) over (label, method, p_fake)."""
    rows = [
        {"video_id": f"v{i}", "label": label, "source": "training/ffpp", "method": method, "p_fake": p}
        for i, (label, method, p) in enumerate(scores)
    ]
    reals = [r["p_fake"] for r in rows if r["label"] == "REAL"]
    return {
        "threshold": threshold,
        "video": {"count": len(rows), "auc": 0.5},
        "false_positive_rate_real": sum(p >= threshold for p in reals) / len(reals),
        "faceforensics": {"auc": 0.5, "method": {"Deepfakes": {"auc": 0.5}}},
        "scores": rows,
    }


FOLD_A = [("REAL", "", 0.1), ("REAL", "", 0.7), ("FAKE", "Deepfakes", 0.8), ("FAKE", "FaceSwap", 0.3)]
FOLD_B = [("REAL", "", 0.2), ("FAKE", "Deepfakes", 0.9), ("FAKE", "Face2Face", 0.95)]


def test_pooled_figures_use_each_folds_own_threshold():
    pooled = cross_validate.pooled_figures([report(FOLD_A, 0.5), report(FOLD_B, 0.92)])
    assert (pooled["count"], pooled["reals"], pooled["fakes"]) == (7, 3, 4)
    assert pooled["false_positive_rate_real"] == pytest.approx(1 / 3)  # 0.7 >= 0.5 in fold A
    assert pooled["detection_rate"] == pytest.approx(2 / 4)  # 0.8 (A) and 0.95 (B); 0.9 < 0.92 in B
    # Reals 0.1, 0.7, 0.2 against Deepfakes 0.8, 0.9: every fake above every real.
    assert pooled["method_auc"]["Deepfakes"] == pytest.approx(1.0)
    assert pooled["method_auc"]["FaceSwap"] == pytest.approx(2 / 3)  # 0.3 beats only 0.1 and 0.2
    assert pooled["auc"] == pytest.approx(11 / 12)


def test_summary_gives_mean_and_spread_and_skips_folds_without_a_figure():
    summary = cross_validate.summarise([{"auc": 0.6, "x": float("nan")}, {"auc": 0.8, "x": 1.0}])
    assert summary["auc"]["mean"] == pytest.approx(0.7)
    assert summary["auc"]["std"] == pytest.approx(0.1414, abs=1e-3)
    assert (summary["auc"]["min"], summary["auc"]["max"], summary["x"]["folds"]) == (0.6, 0.8, 1)


def test_finished_folds_are_not_trained_again(tmp_path, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("a finished fold was trained again")

    monkeypatch.setattr(cross_validate.train, "main", no_training)
    monkeypatch.setattr(cross_validate, "test_reports", no_training)
    folds = [FOLD_A, FOLD_B, FOLD_A]
    for index, scores in enumerate(folds):
        fold_dir = tmp_path / "lite0" / f"fold{index}"
        fold_dir.mkdir(parents=True)
        save_split(Split({"v0": "test"}, 0, {}, True), fold_dir / "split.json")
        reports = json.dumps({"clean": report(scores, 0.5), "c40": report(scores, 0.6)})
        (fold_dir / "test.json").write_text(reports)
        (fold_dir / "val.json").write_text(reports)  # stands in for the scored validation part
    summary = cross_validate.main(["--folds", "3", "--run-dir", str(tmp_path)])
    assert summary["test_clips"] == [4, 3, 4]
    fpr = summary["clean"]["summary"]["false_positive_rate_real"]
    assert fpr["mean"] == pytest.approx(1 / 3)  # 1/2, 0, 1/2
    assert summary["c40"]["pooled"]["count"] == 11
    assert json.loads((tmp_path / "lite0" / "summary.json").read_text())["folds"] == 3
    assert set(summary["threshold_rules"]) == {f"max_fpr={rule:g}" for rule in cross_validate.RULES}


def test_a_threshold_rule_is_chosen_on_validation_and_judged_on_test():
    # Validation reals (clean and c40 together): 0.1, 0.3, 0.6, 0.2. With no false FAKE allowed
    # the threshold goes above 0.6; with one in four allowed, between 0.3 and 0.6.
    validation = {
        "clean": report([("REAL", "", 0.1), ("REAL", "", 0.3), ("FAKE", "Deepfakes", 0.9)], 0.5),
        "c40": report([("REAL", "", 0.6), ("REAL", "", 0.2), ("FAKE", "Deepfakes", 0.7)], 0.5),
    }
    test = {
        "clean": report([("REAL", "", 0.5), ("REAL", "", 0.65), ("FAKE", "Deepfakes", 0.62)], 0.5),
        "c40": report([("REAL", "", 0.1), ("REAL", "", 0.2), ("FAKE", "Deepfakes", 0.4)], 0.5),
    }
    strict = cross_validate.rule_figures(validation, test, 0.0)
    assert strict["threshold"] == pytest.approx(0.8)  # halfway from the top real (0.6) to 1
    assert strict["false_positive_rate_real_clean"] == 0.0 and strict["detection_rate_clean"] == 0.0
    loose = cross_validate.rule_figures(validation, test, 0.25)
    assert loose["threshold"] == pytest.approx(0.45)  # halfway between 0.3 and 0.6
    assert loose["false_positive_rate_real_clean"] == 1.0  # 0.5 and 0.65 both reach it
    assert loose["detection_rate_clean"] == 1.0 and loose["detection_rate_c40"] == 0.0
