import numpy as np
import pytest

from ml_core.training import metrics


def test_it_computes_auc_by_hand_with_a_tie():
    # Pairs (fake, real): (0.9>0.1) (0.9>0.4) (0.4=0.4 -> 1/2) (0.4>0.1) -> 3.5 / 4
    assert metrics.roc_auc([1, 1, 0, 0], [0.9, 0.4, 0.4, 0.1]) == pytest.approx(0.875)


def test_it_returns_nan_auc_for_a_single_class():
    assert np.isnan(metrics.roc_auc([1, 1], [0.2, 0.3]))


def test_a_one_sided_set_gives_nan_not_an_error_or_a_warning():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # sklearn warns on one class; the wrappers must not reach it
        assert np.isnan(metrics.average_precision([0, 0], [0.2, 0.3]))
        assert np.isnan(metrics.eer([1, 1], [0.2, 0.3])[0])
        assert metrics.f1_per_class([0, 0], [0, 0]) == pytest.approx(
            {"REAL": 1.0, "FAKE": np.nan}, nan_ok=True
        )
        assert metrics.confusion_matrix([1, 1], [1, 1]).tolist() == [[0, 0], [0, 2]]
        report = metrics.binary_report([0, 0, 0], [0.1, 0.2, 0.9], threshold=0.5)
    assert np.isnan(report["auc"]) and report["accuracy"] == pytest.approx(2 / 3)


def test_the_roc_curve_keeps_every_distinct_score_and_its_area_is_the_auc():
    y, s = [1, 1, 0, 1, 0, 0], [0.9, 0.8, 0.8, 0.5, 0.3, 0.1]
    fpr, tpr, thresholds = metrics.roc_curve(y, s)
    assert thresholds[0] == np.inf and len(thresholds) == 1 + len(set(s))
    assert np.trapezoid(tpr, fpr) == pytest.approx(metrics.roc_auc(y, s))


def test_it_computes_average_precision_by_hand():
    # Ranked: 1 (P=1), 0, 1 (P=2/3), 0 -> AP = 0.5*1 + 0.5*2/3
    assert metrics.average_precision([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1]) == pytest.approx(0.5 + 1 / 3)


def test_it_computes_confusion_matrix_accuracy_and_f1_by_hand():
    y = [1, 1, 1, 0, 0]
    p = [1, 0, 1, 0, 1]
    assert metrics.confusion_matrix(y, p).tolist() == [[1, 1], [1, 2]]
    assert metrics.accuracy(y, p) == pytest.approx(3 / 5)
    assert metrics.balanced_accuracy(y, p) == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert metrics.f1_per_class(y, p) == pytest.approx({"FAKE": 4 / 6, "REAL": 2 / 4})


def test_it_finds_the_equal_error_rate():
    # Perfect separation: EER 0. One swapped pair out of 2x2: EER 0.5.
    assert metrics.eer([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1])[0] == pytest.approx(0.0)
    assert metrics.eer([1, 0, 1, 0], [0.9, 0.8, 0.2, 0.1])[0] == pytest.approx(0.5)


def test_it_picks_the_threshold_that_maximises_balanced_accuracy():
    y = [0, 0, 0, 1, 1]
    s = [0.1, 0.2, 0.6, 0.7, 0.9]
    threshold, value = metrics.threshold_for_balanced_accuracy(y, s)
    assert 0.6 < threshold <= 0.7
    assert value == pytest.approx(1.0)
    assert metrics.balanced_accuracy(y, (np.array(s) >= threshold).astype(int)) == 1.0


def test_mcnemar_uses_the_exact_binomial_for_few_disagreements():
    a = [True] * 6 + [False] * 4
    b = [False] * 6 + [True] * 0 + [False] * 4
    result = metrics.mcnemar(a, b)
    assert (result.only_a_right, result.only_b_right, result.both_wrong) == (6, 0, 4)
    assert result.method == "exact"
    assert result.p_value == pytest.approx(2 / 64)  # 2 * 0.5**6


def test_mcnemar_uses_chi_square_for_many_disagreements():
    a = [True] * 30 + [False] * 10
    b = [False] * 30 + [True] * 10
    result = metrics.mcnemar(a, b)
    assert result.method == "chi2"
    assert result.statistic == pytest.approx((20 - 1) ** 2 / 40)
    assert result.p_value == pytest.approx(0.00270, abs=2e-4)  # chi2(1).sf(9.025)


def test_bootstrap_interval_contains_the_auc_difference():
    rng = np.random.default_rng(1)
    y = np.r_[np.zeros(40), np.ones(40)].astype(int)
    good = y + rng.normal(0, 0.5, 80)
    bad = y + rng.normal(0, 3.0, 80)
    result = metrics.bootstrap_auc_difference(y, good, bad, samples=300, seed=0)
    assert result["low"] <= result["difference"] <= result["high"]
    assert result["low"] > 0  # the better scorer is significantly better
    assert result == metrics.bootstrap_auc_difference(y, good, bad, samples=300, seed=0)


def test_the_fpr_threshold_lets_at_most_the_allowed_share_of_reals_score_fake():
    reals = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    fakes = [0.95, 0.85, 0.35]
    y = [0] * len(reals) + [1] * len(fakes)
    threshold = metrics.threshold_for_fpr(y, reals + fakes, max_fpr=0.1)
    # One real in ten may reach it (0.9); the next (0.8) must not: halfway between the two.
    assert threshold == pytest.approx(0.85)
    assert sum(s >= threshold for s in reals) == 1
    assert metrics.threshold_for_fpr(y, reals + fakes, max_fpr=0.0) == pytest.approx(0.95)
    assert sum(s >= metrics.threshold_for_fpr(y, reals + fakes, max_fpr=0.25) for s in reals) == 2


def test_the_fpr_threshold_stays_above_a_tie_of_reals_it_must_keep_out():
    threshold = metrics.threshold_for_fpr([0, 0, 0, 1], [0.7, 0.7, 0.2, 0.9], max_fpr=0.0)
    assert threshold > 0.7 and sum(s >= threshold for s in (0.7, 0.7, 0.2)) == 0


def test_saturated_reals_give_a_clamped_threshold_whose_rule_says_the_target_is_not_met(caplog):
    # Two of three reals score 1.0: a 0 % false-FAKE rate would need a threshold above 1.
    y, scores = [0, 0, 0, 1], [1.0, 1.0, 0.2, 1.0]
    assert metrics.threshold_for_fpr(y, scores, max_fpr=0.0) > 1.0
    threshold, rule = metrics.operating_threshold(y, scores, max_fpr=0.0)
    assert threshold == metrics.THRESHOLD_RANGE[1]
    assert "clamped" in rule and "not met" in rule
    assert "clamped" in caplog.text


def test_an_ordinary_operating_threshold_is_left_alone_and_named_by_its_rule():
    reals, fakes = [0.1, 0.2, 0.3, 0.9], [0.8, 0.95]
    y = [0] * 4 + [1] * 2
    threshold, rule = metrics.operating_threshold(y, reals + fakes, max_fpr=0.25)
    assert threshold == pytest.approx(metrics.threshold_for_fpr(y, reals + fakes, max_fpr=0.25))
    assert rule == "false-FAKE rate <= 0.25 on validation reals"
    balanced, rule = metrics.operating_threshold(y, reals + fakes)
    assert balanced == pytest.approx(metrics.threshold_for_balanced_accuracy(y, reals + fakes)[0])
    assert rule == "best balanced accuracy on validation"
