"""A model's test scores, kept small, and what one new score means against them.

The record (a plain dict, stored with the model in the web app's database):
    {"reals": [sorted p_fake of the real test videos], "fakes": [sorted p_fake of the fake ones],
     "count": int, "auc": float, "threshold": float}
and, when the metrics and the model card beside the checkpoint have them (for the model page):
    "by_method": {method: {"fakes": int, "count": int, "auc": float | None}},
    "c40_auc": float, "split_counts": {"train": {"REAL": n, "FAKE": n}, ...},
    "weaknesses": [the model card's "Where it fails" bullets, as plain text]
Scores are rounded to 4 places; a new score is rounded the same way before it is compared, so a
test video scored again lands on its own stored value.
"""

import json
import logging
import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
# 2: the model page's figures (per method, c40, split sizes, weaknesses). A stored record of an
# older version is replaced when the checkpoint is installed again (every `make run` does).
RECORD_VERSION = 2
CARD_FILE = "MODEL_CARD.md"
WEAKNESSES_HEADING = "## Where it fails"
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
    record = {
        "version": RECORD_VERSION,
        "reals": reals,
        "fakes": fakes,
        "count": len(reals) + len(fakes),
        "auc": _rounded(auc),
        "threshold": float(threshold),
    }
    record.update(_model_page_figures(metrics, test))
    return record


def _model_page_figures(metrics, test):
    """Per-method test figures, the c40 AUC and the split sizes, where the metrics have them."""
    figures = {}
    methods = test.get("method")
    if isinstance(methods, dict):
        figures["by_method"] = {
            str(name): {
                "fakes": int(row.get("fakes") or 0),
                "count": int(row.get("count") or 0),
                "auc": _rounded(row["auc"]) if isinstance(row.get("auc"), int | float) else None,
            }
            for name, row in sorted(methods.items())
            if isinstance(row, dict)
        }
    c40_auc = ((metrics.get("test_c40") or {}).get("video") or {}).get("auc")
    if isinstance(c40_auc, int | float):
        figures["c40_auc"] = _rounded(c40_auc)
    splits = metrics.get("split_counts")
    if isinstance(splits, dict):
        figures["split_counts"] = {
            str(split): {str(label): int(n) for label, n in counts.items() if isinstance(n, int)}
            for split, counts in splits.items()
            if isinstance(counts, dict)
        }
    return figures


def outdated(record):
    """True when a stored record is missing or older than what read_beside makes now."""
    return not isinstance(record, dict) or record.get("version", 1) < RECORD_VERSION


def weaknesses_from_card(text):
    """The bullets under the model card's "Where it fails" heading, as plain sentences."""
    bullets, inside = [], False
    for line in text.splitlines():
        if line.startswith("## "):
            inside = line.startswith(WEAKNESSES_HEADING)
            continue
        if not inside:
            continue
        if line.startswith("- "):
            bullets.append(line[2:].strip())
        elif line.startswith("  ") and bullets and line.strip():
            bullets[-1] += " " + line.strip()
        elif line.strip() and bullets:
            inside = False  # the paragraph after the list is not a weakness
    return [re.sub(r"\*\*|`", "", bullet) for bullet in bullets]


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
    record = record_from_metrics(metrics)
    card = path.with_name(CARD_FILE)
    if record is not None and card.is_file():
        try:
            weaknesses = weaknesses_from_card(card.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            logger.warning("%s is not readable (%s): no known weaknesses recorded", card, exc)
        else:
            if weaknesses:
                record["weaknesses"] = weaknesses
    return record


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
