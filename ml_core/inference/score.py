"""The video score: what it is (one sentence, shown wherever the score is), and how sure it is.

How the detector makes it (`DeepfakeDetector.head`, aggregation "mean"): each analysed face gets
a pair of logits; a person's video logits are the mean of their faces' logits (the linear layer
commutes with the mean), so a person's score is the sigmoid of the mean per-face log-odds, not
the mean of the per-face probabilities. The video takes the score of its most fake-looking
person among those seen in enough frames (`Predictor`).

How sure: a percentile bootstrap over the analysed faces. Each resample draws every counted
person's faces with replacement, recomputes each person's score as above and keeps the highest,
as the verdict does. The spread says how much the score depends on which faces happened to be
sampled; it says nothing about whether the model itself is right (the model's test figures do).
Seeded, so the same scores always give the same interval.
"""

import numpy as np

# A person must be seen in this many analysed frames (the main person always counts) to take
# part in the video's verdict.
MIN_IDENTITY_FRAMES = 3
LEVEL = 0.9  # the interval's coverage: "likely range" on the pages
RESAMPLES = 2000
SEED = 0
# Probabilities are clipped before the log-odds so that a face scored 1.0 in float32 stays finite.
_EPS = 1e-6

_DEFINITIONS = {
    "mean": (
        "The score is the model's probability that the video is fake: the average of a person's face "
        "scores (the dots on the chart), taken on the log-odds scale so that confident faces weigh "
        f"more, for the most fake-looking person seen in at least {MIN_IDENTITY_FRAMES} frames."
    ),
    "last": (
        "The score is the model's probability that the video is fake: the score of a person's last "
        f"analysed face, for the most fake-looking person seen in at least {MIN_IDENTITY_FRAMES} frames."
    ),
}
# What the shipped models (and every reference checkpoint) do.
SCORE_DEFINITION = _DEFINITIONS["mean"]


def score_definition(aggregation="mean"):
    """The one sentence that says how the video score is made, for a model's aggregation."""
    return _DEFINITIONS.get(aggregation or "mean", SCORE_DEFINITION)


def _log_odds(probabilities):
    p = np.clip(np.asarray(probabilities, dtype=np.float64), _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def person_score(frame_probabilities):
    """A person's score from their faces' scores, as the detector computes it ("mean" aggregation)."""
    return float(_sigmoid(_log_odds(frame_probabilities).mean()))


def bootstrap_interval(people, *, level=LEVEL, resamples=RESAMPLES, seed=SEED):
    """(low, high) for the video score from each counted person's per-face scores, or None.

    people: a list of per-face probability lists, one per person who counts. None when no person
    has two faces or more (one face gives no spread to measure).
    """
    people = [np.asarray(p, dtype=np.float64) for p in people if len(p)]
    if not people or max(len(p) for p in people) < 2:
        return None
    rng = np.random.default_rng(seed)
    best = np.full(resamples, -np.inf)
    for probabilities in people:
        logits = _log_odds(probabilities)
        draws = rng.integers(0, len(logits), size=(resamples, len(logits)))
        best = np.maximum(best, logits[draws].mean(axis=1))  # (resamples,)
    tail = (1 - level) / 2
    low, high = _sigmoid(np.quantile(best, [tail, 1 - tail]))
    return float(low), float(high)


def uncertain_reasons(p_fake, threshold, band, interval=None):
    """Why a score is UNCERTAIN: "band" (within `band` of the threshold), "range" (its likely
    range has scores on both sides of it), both, or none (a confident verdict)."""
    reasons = []
    # Rounded so that a probability exactly on the band's edge (0.6 with 0.5 +- 0.1) is confident.
    if round(abs(p_fake - threshold), 9) < band:
        reasons.append("band")
    if straddles(interval, threshold):
        reasons.append("range")
    return reasons


def verdict(p_fake, threshold=0.5, band=0.1, interval=None):
    """FAKE / REAL, or UNCERTAIN when the probability is within `band` of the threshold or its
    likely range (`interval`, (low, high)) has scores on both sides of the threshold.

    The one place the verdict rule lives: the worker, the command line and the measurements call
    it, and the pages explain an UNCERTAIN with `uncertain_reasons`.
    """
    if uncertain_reasons(p_fake, threshold, band, interval):
        return "UNCERTAIN"
    return "FAKE" if p_fake >= threshold else "REAL"


def straddles(interval, threshold):
    """True when the interval has scores on both sides of the threshold (FAKE is >= threshold)."""
    if interval is None:
        return False
    low, high = interval
    return low < threshold <= high
