"""A model's test scores, kept small, and what one new score means against them.

The record (a plain dict, stored with the model in the web app's database):
    {"reals": [sorted p_fake of the real test videos], "fakes": [sorted p_fake of the fake ones],
     "count": int, "auc": float, "threshold": float}
Scores are rounded to 4 places; a new score is rounded the same way before it is compared, so a
test video scored again lands on its own stored value.
"""

import json
import logging
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
PLACES = 4
# Below these, the figures are a rough guide only (the web page says so).
MIN_REALS = 30
MIN_AUC = 0.8


def _rounded(value):
    return round(float(value), PLACES)


def at_or_above(sorted_scores, score):
    """How many of `sorted_scores` (ascending) are >= `score` (rounded to PLACES)."""
    return len(sorted_scores) - bisect_left(sorted_scores, _rounded(score))


def auc_of(reals, fakes):
    """P(a fake scores above a real), ties counting one half; None when either side is empty."""
    if not reals or not fakes:
        return None
    reals = sorted(reals)
    wins = 0.0
    for fake in fakes:
        below, up_to = bisect_left(reals, fake), bisect_right(reals, fake)
        wins += below + (up_to - below) / 2
    return wins / (len(reals) * len(fakes))


def record_from_metrics(metrics):
    """The compact record from a metrics.json dict (its `test.scores` and `test.threshold`), or None."""
    test = (metrics or {}).get("test")
    if not isinstance(test, dict):
        return None
    scores = test.get("scores")
    threshold = test.get("threshold")
    if not isinstance(scores, list) or not isinstance(threshold, int | float):
        return None
    reals, fakes = [], []
    for row in scores:
        if not isinstance(row, dict) or not isinstance(row.get("p_fake"), int | float):
            continue
        if row.get("label") == "REAL":
            reals.append(_rounded(row["p_fake"]))
        elif row.get("label") == "FAKE":
            fakes.append(_rounded(row["p_fake"]))
    if not reals or not fakes:
        return None
    reals.sort()
    fakes.sort()
    auc = (test.get("video") or {}).get("auc")
    if not isinstance(auc, int | float):
        auc = auc_of(reals, fakes)
    return {
        "reals": reals,
        "fakes": fakes,
        "count": len(reals) + len(fakes),
        "auc": _rounded(auc),
        "threshold": float(threshold),
    }


def read_beside(checkpoint_path, sha256=None):
    """The record from a metrics.json next to the checkpoint file, or None.

    When the metrics name a SHA-256 that is not `sha256`, they belong to another file: None.
    """
    path = Path(checkpoint_path).with_name(METRICS_FILE)
    if not path.is_file():
        return None
    try:
        metrics = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        logger.warning("%s is not readable JSON (%s): no test figures recorded", path, exc)
        return None
    if not isinstance(metrics, dict):
        return None
    named = metrics.get("sha256")
    if sha256 and named and named != sha256:
        logger.warning("%s describes another checkpoint (%s): no test figures recorded", path, named[:12])
        return None
    return record_from_metrics(metrics)


def summary(record):
    """One line for operators: counts, AUC and threshold."""
    return (
        f"{len(record['reals'])} real and {len(record['fakes'])} fake test videos, "
        f"AUC {record['auc']:.3f}, threshold {record['threshold']:.3f}"
    )


@dataclass(frozen=True)
class ScoreContext:
    real_count: int
    reals_at_or_above: int
    fake_count: int
    fakes_at_or_above: int
    reals_flagged: int  # real test videos at or above the model's threshold
    auc: float | None

    @property
    def false_positive_rate(self):
        return self.reals_flagged / self.real_count


def score_context(record, score):
    """Where `score` falls among the model's test scores; None without a usable record."""
    if not isinstance(record, dict):
        return None
    reals, fakes = record.get("reals"), record.get("fakes")
    threshold = record.get("threshold")
    if not reals or not fakes or not isinstance(threshold, int | float):
        return None
    auc = record.get("auc")
    return ScoreContext(
        real_count=len(reals),
        reals_at_or_above=at_or_above(reals, score),
        fake_count=len(fakes),
        fakes_at_or_above=at_or_above(fakes, score),
        reals_flagged=at_or_above(reals, threshold),
        auc=float(auc) if isinstance(auc, int | float) else None,
    )
