"""Detection metrics: thin wrappers over sklearn.metrics with this project's conventions.

Convention everywhere in this module: `y_true` is 1 for FAKE (the positive class) and 0 for
REAL, and `scores` are fake probabilities (higher = more likely fake). Functions return NaN
where a metric is undefined (for example AUC when only one class is present) instead of
raising or warning, so a report can still be written for a small or one-sided evaluation set.
"""

import logging
from dataclasses import dataclass

import numpy as np
from scipy import stats
from sklearn import metrics as skm

logger = logging.getLogger(__name__)

NAN = float("nan")


def _arrays(y_true, scores):
    y = np.asarray(y_true, dtype=np.int64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"y_true has {y.size} values but scores has {s.size}")
    if np.any((y != 0) & (y != 1)):
        raise ValueError("y_true must contain only 0 (real) and 1 (fake)")
    return y, s


def _both_classes(y) -> bool:
    return 0 < int(y.sum()) < y.size


def roc_curve(y_true, scores):
    """False/true positive rates at every distinct score, highest threshold first.

    Returns (fpr, tpr, thresholds); the first point is (0, 0) at threshold +inf. Undefined (NaN
    rates) when only one class is present.
    """
    y, s = _arrays(y_true, scores)
    if not _both_classes(y):
        return np.array([0.0, NAN]), np.array([0.0, NAN]), np.array([np.inf, NAN])
    return skm.roc_curve(y, s, drop_intermediate=False)


def roc_auc(y_true, scores) -> float:
    """Area under the ROC curve (ties count one half)."""
    y, s = _arrays(y_true, scores)
    return float(skm.roc_auc_score(y, s)) if _both_classes(y) else NAN


def average_precision(y_true, scores) -> float:
    """AP = sum over thresholds of (R_n - R_{n-1}) * P_n (no interpolation)."""
    y, s = _arrays(y_true, scores)
    return float(skm.average_precision_score(y, s)) if y.sum() else NAN


def eer(y_true, scores) -> tuple[float, float]:
    """Equal error rate and the threshold where it is reached.

    The EER is where the false positive rate equals the false negative rate; between two ROC
    points it is found by linear interpolation.
    """
    fpr, tpr, thresholds = roc_curve(y_true, scores)
    if np.isnan(fpr).any() or np.isnan(tpr).any():
        return float("nan"), float("nan")
    fnr = 1 - tpr
    diff = fpr - fnr  # rises from -1 at (0, 0) to >= 0 at the last point
    crossing = int(np.argmax(diff >= 0))
    if crossing == 0 or diff[crossing] == 0:
        return float(fpr[crossing]), float(thresholds[crossing])
    a, b = crossing - 1, crossing
    weight = -diff[a] / (diff[b] - diff[a])
    rate = fpr[a] + weight * (fpr[b] - fpr[a])
    threshold = (
        thresholds[b]
        if not np.isfinite(thresholds[a])
        else thresholds[a] + weight * (thresholds[b] - thresholds[a])
    )
    return float(rate), float(threshold)


def confusion_matrix(y_true, y_pred) -> np.ndarray:
    """2x2 counts: rows are the true class, columns the predicted class, index 0 = REAL, 1 = FAKE."""
    y, p = _arrays(y_true, y_pred)
    return skm.confusion_matrix(y, p.astype(np.int64), labels=[0, 1])


def accuracy(y_true, y_pred) -> float:
    y, p = _arrays(y_true, y_pred)
    return float(skm.accuracy_score(y, p.astype(np.int64))) if y.size else NAN


def balanced_accuracy(y_true, y_pred) -> float:
    """Mean of the recall of each class present (true positive rate and true negative rate)."""
    matrix = confusion_matrix(y_true, y_pred)
    recalls = [matrix[c, c] / matrix[c].sum() for c in (0, 1) if matrix[c].sum()]
    return float(np.mean(recalls)) if recalls else NAN


def f1_per_class(y_true, y_pred) -> dict[str, float]:
    """F1 of each class, each taken in turn as the positive class (NaN for a class never seen)."""
    y, p = _arrays(y_true, y_pred)
    scores = skm.f1_score(y, p.astype(np.int64), labels=[0, 1], average=None, zero_division=np.nan)
    return {"REAL": float(scores[0]), "FAKE": float(scores[1])}


def threshold_for_balanced_accuracy(y_true, scores) -> tuple[float, float]:
    """The threshold (predict FAKE when score >= threshold) that maximises balanced accuracy.

    Among equally good thresholds the midpoint between neighbouring scores is returned, so the
    threshold does not sit exactly on a training score. Returns (threshold, balanced accuracy).
    """
    y, s = _arrays(y_true, scores)
    if y.size == 0 or y.min() == y.max():
        return 0.5, balanced_accuracy(y, (s >= 0.5).astype(int)) if y.size else float("nan")
    fpr, tpr, thresholds = roc_curve(y, s)
    values = (tpr + 1 - fpr) / 2
    best = int(np.argmax(values))
    if not np.isfinite(thresholds[best]):
        threshold = float(s.max()) + 1e-6
    else:
        below = s[s < thresholds[best]]
        threshold = float((thresholds[best] + below.max()) / 2) if below.size else float(thresholds[best])
    return threshold, float(values[best])


def threshold_for_fpr(y_true, scores, max_fpr: float) -> float:
    """A threshold at which at most `max_fpr` of the real videos (y = 0) score FAKE (>= threshold).

    A false FAKE on a real person's video is the worst error the service can make, so the
    operating point is set on reals alone: with n reals, at most floor(max_fpr * n) of them may
    reach the threshold. It is placed halfway between the highest real that must stay below it
    and the next real score up (or 1), not on a real's score itself.
    """
    y, s = _arrays(y_true, scores)
    reals = np.sort(s[y == 0])[::-1]  # highest first
    if reals.size == 0:
        return 0.5
    allowed = int(np.floor(max_fpr * reals.size + 1e-9))
    if allowed >= reals.size:
        return float(reals[-1])
    below = float(reals[allowed])
    above = float(reals[allowed - 1]) if allowed else 1.0
    # Tied reals: just above them (above 1.0 when they saturate, which no checkpoint can hold).
    return float((below + above) / 2) if above > below else float(np.nextafter(below, np.inf))


# A checkpoint's threshold must lie strictly inside (0, 1) (DetectorConfig checks it).
THRESHOLD_RANGE = (1e-4, 1 - 1e-4)


def operating_threshold(y_true, scores, max_fpr: float | None = None) -> tuple[float, str]:
    """The threshold a checkpoint ships with, chosen on validation scores, and its rule in words.

    With `max_fpr`, the `threshold_for_fpr` rule; otherwise the best balanced accuracy. A
    threshold outside THRESHOLD_RANGE is clamped into it and the rule says so: when validation
    reals score (almost) 1.0, no threshold a checkpoint can hold keeps their false-FAKE rate at
    the target, and that must be read in the model's record, not discovered on a real user.
    """
    if max_fpr is None:
        threshold, _ = threshold_for_balanced_accuracy(y_true, scores)
        rule = "best balanced accuracy on validation"
    else:
        threshold = threshold_for_fpr(y_true, scores, max_fpr)
        rule = f"false-FAKE rate <= {max_fpr:g} on validation reals"
    low, high = THRESHOLD_RANGE
    if not low <= threshold <= high:
        clamped = min(max(threshold, low), high)
        rule += (
            f"; the rule gave {threshold:.6g}, clamped to {clamped:g}: validation scores saturate, "
            "so the rule is not met exactly"
        )
        logger.warning("threshold %.6g clamped to %g: validation scores saturate", threshold, clamped)
        threshold = clamped
    return float(threshold), rule


@dataclass(frozen=True)
class McNemarResult:
    both_right: int
    only_a_right: int
    only_b_right: int
    both_wrong: int
    statistic: float
    p_value: float
    method: str  # "exact" (binomial, few discordant pairs) or "chi2" (with continuity correction)

    def to_dict(self):
        return dict(self.__dict__)


def mcnemar(correct_a, correct_b) -> McNemarResult:
    """McNemar's test on paired decisions of two classifiers on the same videos."""
    a = np.asarray(correct_a, dtype=bool).ravel()
    b = np.asarray(correct_b, dtype=bool).ravel()
    if a.shape != b.shape:
        raise ValueError("both classifiers must be scored on the same videos")
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    discordant = only_a + only_b
    if discordant == 0:
        statistic, p_value, method = 0.0, 1.0, "exact"
    elif discordant < 25:
        # Exact two-sided binomial test with p = 1/2 on the discordant pairs.
        k = min(only_a, only_b)
        statistic, p_value, method = float(k), stats.binomtest(k, discordant, 0.5).pvalue, "exact"
    else:
        statistic = (abs(only_a - only_b) - 1) ** 2 / discordant  # with continuity correction
        p_value, method = stats.chi2.sf(statistic, df=1), "chi2"
    return McNemarResult(
        both_right=int(np.sum(a & b)),
        only_a_right=only_a,
        only_b_right=only_b,
        both_wrong=int(np.sum(~a & ~b)),
        statistic=float(statistic),
        p_value=float(p_value),
        method=method,
    )


def bootstrap_auc_difference(y_true, scores_a, scores_b, *, samples=1000, confidence=0.95, seed=0):
    """AUC(a) - AUC(b) with a percentile bootstrap confidence interval over videos.

    Resamples are stratified (reals and fakes resampled separately) so every resample has both
    classes. Returns dict(difference, low, high, samples).
    """
    y, a = _arrays(y_true, scores_a)
    _, b = _arrays(y_true, scores_b)
    difference = roc_auc(y, a) - roc_auc(y, b)
    positives, negatives = np.where(y == 1)[0], np.where(y == 0)[0]
    if positives.size == 0 or negatives.size == 0:
        return {"difference": float("nan"), "low": float("nan"), "high": float("nan"), "samples": 0}
    rng = np.random.default_rng(seed)
    differences = np.empty(samples)
    for i in range(samples):
        index = np.r_[rng.choice(positives, positives.size), rng.choice(negatives, negatives.size)]
        differences[i] = roc_auc(y[index], a[index]) - roc_auc(y[index], b[index])
    alpha = (1 - confidence) / 2
    low, high = np.quantile(differences, [alpha, 1 - alpha])
    return {"difference": float(difference), "low": float(low), "high": float(high), "samples": samples}


def binary_report(y_true, scores, threshold: float) -> dict:
    """Every headline metric for one set of scores at one decision threshold (JSON-safe)."""
    y, s = _arrays(y_true, scores)
    predicted = (s >= threshold).astype(np.int64)
    rate, eer_threshold = eer(y, s) if y.size else (float("nan"), float("nan"))
    return {
        "count": int(y.size),
        "fakes": int(y.sum()),
        "reals": int(y.size - y.sum()),
        "auc": roc_auc(y, s),
        "average_precision": average_precision(y, s),
        "eer": rate,
        "eer_threshold": eer_threshold,
        "threshold": float(threshold),
        "accuracy": accuracy(y, predicted),
        "balanced_accuracy": balanced_accuracy(y, predicted),
        "f1": f1_per_class(y, predicted),
        "confusion_matrix": confusion_matrix(y, predicted).tolist(),
    }
