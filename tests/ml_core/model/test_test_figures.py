"""A model's test scores: the compact record, and where a new score falls among them."""

import json

import pytest

from ml_core.model.test_figures import at_or_above, auc_of, read_beside, record_from_metrics, score_context


def metrics_with(reals, fakes, threshold=0.5, auc=None):
    scores = [{"label": "REAL", "p_fake": p} for p in reals] + [{"label": "FAKE", "p_fake": p} for p in fakes]
    test = {"threshold": threshold, "scores": scores}
    if auc is not None:
        test["video"] = {"auc": auc}
    return {"test": test}


def test_at_or_above_counts_ties_as_at_least_this_high():
    scores = [0.1, 0.3, 0.3, 0.7]
    assert at_or_above(scores, 0.3) == 3
    assert at_or_above(scores, 0.30001) == 3  # rounded to 4 places first: the same stored value
    assert at_or_above(scores, 0.3001) == 1


def test_at_or_above_at_the_edges():
    scores = [0.0, 0.5, 1.0]
    assert at_or_above(scores, 0.0) == 3
    assert at_or_above(scores, -1.0) == 3
    assert at_or_above(scores, 1.0) == 1
    assert at_or_above(scores, 1.5) == 0
    assert at_or_above([], 0.5) == 0


def test_the_record_keeps_sorted_rounded_scores_per_label():
    record = record_from_metrics(metrics_with([0.61234567, 0.1], [0.9, 0.33333333], threshold=0.7, auc=0.75))
    assert record == {
        "version": 2,
        "reals": [0.1, 0.6123],
        "fakes": [0.3333, 0.9],
        "count": 4,
        "auc": 0.75,
        "threshold": 0.7,
    }


def test_the_record_computes_the_auc_when_the_metrics_lack_it():
    record = record_from_metrics(metrics_with([0.1, 0.5], [0.5, 0.9]))
    assert record["auc"] == pytest.approx((1 + 0.5 + 1 + 1) / 4)  # the tie counts one half


@pytest.mark.parametrize(
    "metrics",
    [
        {},
        {"test": {"threshold": 0.5}},
        {"test": {"scores": [{"label": "REAL", "p_fake": 0.1}, {"label": "FAKE", "p_fake": 0.9}]}},
        metrics_with([], [0.9]),
        metrics_with([0.1], []),
    ],
)
def test_there_is_no_record_without_scores_of_both_kinds_and_a_threshold(metrics):
    assert record_from_metrics(metrics) is None


def test_auc_of_perfect_and_reversed_scores():
    assert auc_of([0.1, 0.2], [0.8, 0.9]) == 1.0
    assert auc_of([0.8, 0.9], [0.1, 0.2]) == 0.0
    assert auc_of([], [0.5]) is None


def test_score_context_counts_reals_and_fakes_at_or_above_and_the_false_positives_at_the_threshold():
    record = record_from_metrics(metrics_with([0.1, 0.2, 0.6, 0.8], [0.4, 0.6, 0.9], threshold=0.6, auc=0.8))
    context = score_context(record, 0.6)
    assert (context.real_count, context.reals_at_or_above) == (4, 2)
    assert (context.fake_count, context.fakes_at_or_above) == (3, 2)
    assert context.reals_flagged == 2  # a real exactly at the threshold is flagged (FAKE is p >= threshold)
    assert context.false_positive_rate == 0.5
    assert context.auc == 0.8
    assert score_context(record, 0.95).reals_at_or_above == 0
    assert score_context(record, 0.0).fakes_at_or_above == 3


def test_score_context_is_none_without_a_usable_record():
    assert score_context(None, 0.5) is None
    assert score_context({}, 0.5) is None
    assert score_context({"reals": [0.1], "fakes": [0.9]}, 0.5) is None  # no threshold


def test_read_beside_reads_metrics_json_next_to_the_checkpoint(tmp_path):
    checkpoint = tmp_path / "detector.pt"
    assert read_beside(checkpoint) is None  # nothing there
    (tmp_path / "metrics.json").write_text(json.dumps({"sha256": "aa" * 32, **metrics_with([0.2], [0.8])}))
    assert read_beside(checkpoint, "aa" * 32)["reals"] == [0.2]
    assert read_beside(checkpoint, "bb" * 32) is None  # the metrics describe another file
    (tmp_path / "metrics.json").write_text("{not json")
    assert read_beside(checkpoint) is None


def test_the_shipped_models_metrics_give_its_published_false_positive_rate():
    from ml_core.constants import DEFAULT_CHECKPOINT

    metrics = json.loads(DEFAULT_CHECKPOINT.with_name("metrics.json").read_text())
    context = score_context(record_from_metrics(metrics), 0.5)
    assert context.real_count == metrics["test"]["video"]["reals"]
    assert context.fake_count == metrics["test"]["video"]["fakes"]
    assert context.false_positive_rate == pytest.approx(metrics["test"]["false_positive_rate_real"])


def test_the_record_keeps_per_method_figures_the_c40_auc_and_the_split_sizes():
    metrics = metrics_with([0.2, 0.4], [0.6, 0.9])
    metrics["test"]["method"] = {"Deepfakes": {"count": 3, "fakes": 1, "auc": 0.91234}, "odd": "not a row"}
    metrics["test_c40"] = {"video": {"auc": 0.61}}
    metrics["split_counts"] = {"test": {"REAL": 2, "FAKE": 2}}
    record = record_from_metrics(metrics)
    assert record["by_method"] == {"Deepfakes": {"fakes": 1, "count": 3, "auc": 0.9123}}
    assert record["c40_auc"] == 0.61
    assert record["split_counts"] == {"test": {"REAL": 2, "FAKE": 2}}


def test_the_model_cards_weaknesses_come_with_the_figures(tmp_path):
    (tmp_path / "metrics.json").write_text(json.dumps(metrics_with([0.2], [0.8])))
    (tmp_path / "MODEL_CARD.md").write_text(
        "# Card\n\n## Where it fails (known weaknesses)\n\n- **Compression.** AUC falls\n  at `c40`.\n"
        "- Few reals.\n\nInstall a stronger one.\n\n## Next\n\n- not a weakness\n"
    )
    record = read_beside(tmp_path / "detector.pt")
    assert record["weaknesses"] == ["Compression. AUC falls at c40.", "Few reals."]


def test_the_shipped_model_names_its_weaknesses():
    from ml_core.constants import DEFAULT_CHECKPOINT

    record = read_beside(DEFAULT_CHECKPOINT)
    assert any("compression" in w.lower() for w in record["weaknesses"])
    assert record["split_counts"]["test"] == {"REAL": 19, "FAKE": 28}
