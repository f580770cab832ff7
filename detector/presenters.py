"""What the pages and the API show about a submission, computed once for both."""

from django.urls import reverse

from ml_core.inference.score import LEVEL, SCORE_DEFINITION, score_definition, uncertain_reasons
from ml_core.model.names import describe_architecture
from ml_core.model.test_figures import MIN_AUC, MIN_REALS, score_context

from . import services, validators
from .charts import frame_probability_svg
from .models import FrameImage, Submission

Status, Stage = Submission.Status, Submission.Stage

VERDICT_STYLES = {"FAKE": "danger", "REAL": "success", "UNCERTAIN": "warning"}
STATUS_STYLES = {
    "fetching": "info",
    "queued": "secondary",
    "running": "primary",
    "done": "success",
    "failed": "danger",
}
METRIC_LABELS = {
    "val_auc": "validation AUC",
    "val_accuracy": "validation accuracy",
    "val_acc": "validation accuracy",
    "val_loss": "validation loss",
    "val_eer": "validation EER",
    "val_ap": "validation AP",
    "auc": "AUC",
    "accuracy": "accuracy",
}


def stage_message(submission, position=None):
    """One human sentence for where the job is."""
    if submission.status == Status.FETCHING:
        return fetch_message(submission)
    if submission.status == Status.QUEUED:
        if submission.stage == Stage.WAITING_MODEL:
            return "Waiting for a detector model to be installed."
        if not getattr(submission, "dispatched_at", True):
            return "Your video is saved. The analysis will start shortly."
        if position and position > 1:
            return f"Waiting in the queue: {position - 1} video{'s' if position > 2 else ''} ahead of yours."
        return "Waiting in the queue: yours is next."
    if submission.status == Status.RUNNING:
        return f"{submission.get_stage_display()}…"
    if submission.status == Status.DONE:
        return "Analysis finished."
    return "The analysis failed."


def status_payload(submission):
    """The small JSON the submission page polls (also embedded in the API detail)."""
    position = services.queue_position(submission) if submission.status == Status.QUEUED else None
    return {
        "id": str(submission.public_id),
        "status": submission.status,
        "status_label": submission.get_status_display(),
        "stage": submission.stage,
        "stage_label": submission.get_stage_display(),
        "message": stage_message(submission, position),
        "progress": submission.progress if submission.status != Status.DONE else 100,
        "queue_position": position,
        "waiting_for_model": submission.status == Status.QUEUED and submission.stage == Stage.WAITING_MODEL,
        "finished": submission.is_finished,
        "error_message": submission.error_message if submission.status == Status.FAILED else "",
        "fetch": (
            {"bytes": submission.fetch_bytes, "total_bytes": submission.fetch_total_bytes}
            if submission.status == Status.FETCHING
            else None
        ),
        "updated_at": submission.updated_at.isoformat() if submission.updated_at else None,
    }


def fetch_message(submission):
    if submission.stage != Stage.FETCHING:
        return "Waiting to fetch the video from the link."
    if not submission.fetch_bytes:
        return "Looking for the video at the link…"
    received = validators.describe_size(submission.fetch_bytes)
    if submission.fetch_total_bytes:
        total = validators.describe_size(submission.fetch_total_bytes)
        return f"Fetching the video from the link: {received} of {total} ({submission.progress}%)."
    return f"Fetching the video from the link: {received} so far."


def provenance(submission):
    """Where a link submission's video came from (None for an upload): rows for the pages, and the
    owner's earlier submissions of the very same bytes (same SHA-256), newest first."""
    if not submission.source_url:
        return None
    rows = [
        ("Link given", submission.source_url),
        ("Final address", submission.source_final_url),
        ("Site", submission.source_site),
        ("Post id", submission.source_post_id),
        ("Title", submission.source_title),
        ("Uploader", submission.source_uploader),
        ("SHA-256 of the fetched file", submission.fetched_sha256),
    ]
    earlier = []
    if submission.fetched_sha256:
        earlier = list(
            Submission.objects.filter(owner_id=submission.owner_id, fetched_sha256=submission.fetched_sha256)
            .exclude(pk=submission.pk)
            .filter(created_at__lte=submission.created_at)
            .order_by("-created_at")[:5]
        )
    return {
        "rows": [(label, value) for label, value in rows if value],
        "fetched_at": submission.fetched_at,
        "earlier": earlier,
    }


def current_result(submission):
    if submission.current_result_id:
        return submission.current_result
    return submission.results.first() if submission.status == Status.DONE else None


def format_metric(value):
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def model_summary(result):
    """Name, hash prefix and the validation metrics recorded with the model, when known."""
    metrics = {}
    if result.detector_id and result.detector is not None:
        metrics = dict(result.detector.metrics or {})
    metrics = metrics or dict((result.details or {}).get("metrics") or {})
    config = dict(result.detector.config or {}) if result.detector_id and result.detector is not None else {}
    shown = [
        (METRIC_LABELS.get(key, key.replace("_", " ")), format_metric(value))
        for key, value in sorted(metrics.items())
        if key != "kind" and isinstance(value, int | float | str) and not isinstance(value, bool)
    ]
    return {
        "name": result.model_name,
        "sha256": result.model_sha256,
        "sha256_prefix": result.model_sha256[:12],
        "architecture": describe_architecture(config["backbone"], config.get("temporal", "reference"))
        if config.get("backbone")
        else "",
        "metrics": shown,
        "raw_metrics": {k: v for k, v in metrics.items() if isinstance(v, int | float | str)},
    }


def _videos(count, kind):
    return f"{count} {kind} test video{'' if count == 1 else 's'}"


def score_in_context(result):
    """What this score means for the model that gave it, in words, from the model's test scores.

    {"sentence": ..., "caution": ... or ""}; models installed without test scores (e.g. a reference
    checkpoint) get a sentence that says so.
    """
    detector = result.detector if result.detector_id else None
    record = (detector.metrics or {}).get("test_scores") if detector is not None else None
    context = score_context(record, result.fake_probability)
    if context is None:
        return {
            "sentence": "This model comes with no test figures, so this score cannot be compared "
            "with how it scored known real and fake videos.",
            "caution": "",
            "figures": None,
        }
    sentence = (
        f"Of {_videos(context.real_count, 'real')}, {context.reals_at_or_above} scored at least this high; "
        f"of {_videos(context.fake_count, 'fake')}, {context.fakes_at_or_above} did. "
        # "Reached the threshold", not "called FAKE": the page's UNCERTAIN band starts there.
        f"{context.reals_flagged} of {context.real_count} real test videos "
        f"({context.false_positive_rate:.0%}) reached the model's threshold."
    )
    reasons = []
    if context.real_count < MIN_REALS:
        reasons.append(f"it was tested on few real videos ({context.real_count})")
    if context.auc is None:
        reasons.append("its figures do not say how well it tells real from fake")
    elif context.auc < MIN_AUC:
        reasons.append(f"it ranked a fake test video above a real one only {context.auc:.0%} of the time")
    caution = f"Read this as a rough guide: {' and '.join(reasons)}." if reasons else ""
    figures = {
        "real_count": context.real_count,
        "reals_at_or_above": context.reals_at_or_above,
        "fake_count": context.fake_count,
        "fakes_at_or_above": context.fakes_at_or_above,
        "reals_at_threshold": context.reals_flagged,
        "false_positive_rate": context.false_positive_rate,
        "auc": context.auc,
    }
    return {"sentence": sentence, "caution": caution, "figures": figures}


def threshold_of(result):
    details = result.details or {}
    return float(details.get("threshold", 0.5))


def definition_of(result):
    """The one sentence that says how this result's score was made (its model's aggregation)."""
    detector = result.detector if result.detector_id else None
    return score_definition((detector.config or {}).get("aggregation")) if detector else SCORE_DEFINITION


def interval_of(result):
    """(low, high) of the score's likely range as the worker stored it, or None (older results,
    or a single face)."""
    stored = (result.details or {}).get("score_interval")
    if isinstance(stored, list | tuple) and len(stored) == 2:
        if all(isinstance(v, int | float) for v in stored):
            return float(stored[0]), float(stored[1])
    return None


def interval_json(result):
    interval = interval_of(result)
    if interval is None:
        return None
    level = (result.details or {}).get("interval_level", LEVEL)
    return {"low": interval[0], "high": interval[1], "level": level}


def percent(value):
    return round(value * 100)


def uncertainty_words(result):
    """Why this result is UNCERTAIN, in words ("" for a confident verdict), from the rule itself."""
    if result.verdict != "UNCERTAIN":
        return ""
    details = result.details or {}
    threshold = threshold_of(result)
    band = details.get("uncertain_band")
    interval = interval_of(result)
    reasons = uncertain_reasons(
        result.fake_probability, threshold, band if isinstance(band, int | float) else 0.0, interval
    )
    parts = []
    if "band" in reasons:
        parts.append(
            f"the score is within {percent(band)} points of the decision threshold ({percent(threshold)}%)"
        )
    if "range" in reasons:
        parts.append(
            f"its likely range ({percent(interval[0])}–{percent(interval[1])}%) reaches both sides of "
            f"the threshold ({percent(threshold)}%): another sample of frames could tip it either way"
        )
    if not parts:  # an old result, decided before its band was recorded
        return f"The score is too close to the decision threshold ({percent(threshold)}%) to call either way."
    return "Too close to call: " + "; and ".join(parts) + "."


def processing_seconds(submission, result):
    timings = (result.timings or {}) if result else {}
    # The worker nests its stage clocks ({"worker": {"total": ...}, "extraction": {...}}).
    total = timings.get("total", (timings.get("worker") or {}).get("total"))
    if isinstance(total, int | float):
        return float(total)
    if submission.started_at and submission.finished_at:
        return (submission.finished_at - submission.started_at).total_seconds()
    return None


def frame_urls(submission, frame, absolute=None):
    def url(kind):
        path = reverse(
            "submission-frame-image",
            kwargs={"public_id": submission.public_id, "frame_id": frame.pk, "kind": kind},
        )
        return absolute(path) if absolute else path

    return (url("crop") if frame.crop else None, url("overlay") if frame.overlay else None)


# Below this share of its Grad-CAM heat inside the face region (55% of the crop: evenly spread
# heat puts 0.55 there), a crop gets a note: three quarters of its heat or more lies off the face.
HEAT_INSIDE_MIN = 0.25


def identity_groups(submission, result):
    """Crops grouped per person, main person first, each in frame order.

    Uses the identity order the worker recorded (main identity first); falls back to numeric order.
    """
    frames = list(FrameImage.objects.filter(result=result).order_by("identity", "position"))
    by_identity = {}
    for frame in frames:
        frame.crop_url, frame.overlay_url = frame_urls(submission, frame)
        by_identity.setdefault(frame.identity, []).append(frame)
    recorded = [i for i in (result.identities or []) if isinstance(i, dict) and "id" in i]
    main = (result.details or {}).get("main_identity")
    recorded.sort(key=lambda i: i["id"] != main)  # stable: the main person first, then as recorded
    order = [i["id"] for i in recorded] + sorted(
        k for k in by_identity if k not in {i["id"] for i in recorded}
    )
    info = {i["id"]: i for i in recorded}
    threshold = threshold_of(result)
    groups = []
    for number, identity in enumerate(order, start=1):
        meta = info.get(identity, {})
        frames = by_identity.get(identity, [])
        heat = meta.get("heat_in_face") or []
        for frame in frames:
            share = heat[frame.position] if frame.position < len(heat) else None
            # A note on the crop when most of its Grad-CAM heat lies outside the face.
            frame.heat_outside = (
                isinstance(share, int | float) and bool(frame.overlay) and share < HEAT_INSIDE_MIN
            )
            frame.heat_in_face = share
        interval = meta.get("interval")
        interval = tuple(interval) if isinstance(interval, list) and len(interval) == 2 else None
        probabilities = meta.get("frame_probabilities") or [
            f.fake_probability for f in by_identity.get(identity, []) if f.fake_probability is not None
        ]
        timestamps = meta.get("timestamps") or [f.timestamp for f in by_identity.get(identity, [])]
        label = meta.get("label") or ""
        groups.append(
            {
                "id": identity,
                "number": number,
                "label": label,
                "style": VERDICT_STYLES.get(label, "secondary"),
                "fake_probability": meta.get("fake_probability"),
                "interval": interval,
                "interval_percent": (percent(interval[0]), percent(interval[1])) if interval else None,
                "frames": frames,
                "chart": frame_probability_svg(
                    probabilities,
                    timestamps,
                    threshold=threshold,
                    label=f"Fake probability, person {number}",
                    score=meta.get("fake_probability"),
                    interval=interval,
                ),
            }
        )
    return groups


def result_context(submission, result):
    """Everything the result section of the page shows."""
    groups = identity_groups(submission, result)
    main = groups[0] if groups else None
    interval = interval_of(result)
    main_person = groups[0] if groups else {}
    return {
        "result": result,
        "verdict_style": VERDICT_STYLES.get(result.verdict, "secondary"),
        "fake_percent": round(result.fake_probability * 100, 1),
        "interval": interval_json(result),
        "interval_percent": (percent(interval[0]), percent(interval[1])) if interval else None,
        "uncertainty": uncertainty_words(result),
        "score_definition": definition_of(result),
        "model": model_summary(result),
        "model_is_active": bool(result.detector_id and result.detector.is_active),
        "score_context": score_in_context(result),
        "threshold": threshold_of(result),
        # The main person's chart, with that person's score (the video's, with one person) as a line.
        "chart": frame_probability_svg(
            result.frame_probabilities,
            result.frame_timestamps,
            threshold=threshold_of(result),
            score=main_person.get("fake_probability"),
            interval=main_person.get("interval"),
        ),
        "heat_outside": sum(1 for f in (main["frames"] if main else []) if f.heat_outside),
        # Which person the video's score comes from (1 = the main person), when the worker said.
        "decisive_number": next(
            (g["number"] for g in groups if g["id"] == (result.details or {}).get("decisive_identity")), None
        ),
        "main_frames": main["frames"] if main else [],
        "people": groups,
        "several_people": len(groups) > 1,
        "has_overlays": any(f.overlay for g in groups for f in g["frames"]),
        "processing_seconds": processing_seconds(submission, result),
        "warnings": [w for w in (result.details or {}).get("warnings", []) if isinstance(w, str)],
    }


# --- the model page --------------------------------------------------------------------------


def _share(count, total):
    return f"{count} of {total} ({count / total:.0%})"


def model_card(detector):
    """The active model's card, from its record alone (config and stored figures), or None."""
    if detector is None:
        return None
    metrics, config = dict(detector.metrics or {}), dict(detector.config or {})
    record = metrics.get("test_scores") if isinstance(metrics.get("test_scores"), dict) else {}
    threshold = record.get("threshold", config.get("threshold"))
    band = config.get("uncertain_band")
    at_threshold = score_context(record, threshold) if record and threshold is not None else None
    test = None
    if at_threshold is not None:
        test = {
            "reals": at_threshold.real_count,
            "fakes": at_threshold.fake_count,
            "auc": at_threshold.auc,
            "c40_auc": record.get("c40_auc"),
            "false_positives": _share(at_threshold.reals_flagged, at_threshold.real_count),
            "detected": _share(at_threshold.fakes_at_or_above, at_threshold.fake_count),
            "methods": [
                # "fake" is what the evaluation calls clips of no named method.
                {
                    "name": "other fake clips" if name == "fake" else name,
                    "fakes": row.get("fakes"),
                    "auc": row.get("auc"),
                }
                for name, row in (record.get("by_method") or {}).items()
                if isinstance(row, dict)
            ],
        }
    splits = record.get("split_counts") or {}
    weaknesses = [w for w in record.get("weaknesses") or [] if isinstance(w, str)]
    if at_threshold is None:
        weaknesses.insert(
            0, "This model comes with no test figures: nothing on this page says how often it is wrong."
        )
    else:
        if at_threshold.real_count < MIN_REALS:
            weaknesses.insert(
                0, f"It was tested on few real videos ({at_threshold.real_count}): every rate above is rough."
            )
        if at_threshold.auc is not None and at_threshold.auc < MIN_AUC:
            weaknesses.insert(
                0, f"It ranks a fake test video above a real one only {at_threshold.auc:.0%} of the time."
            )
    validation = [
        (METRIC_LABELS.get(key, key.replace("_", " ")), format_metric(value))
        for key, value in sorted(metrics.items())
        if key not in ("kind", "test_scores")
        and isinstance(value, int | float)
        and not isinstance(value, bool)
    ]
    return {
        "name": detector.name,
        "sha256": detector.sha256,
        "installed_at": detector.created_at,
        "size_bytes": detector.size_bytes,
        "kind": metrics.get("kind", ""),
        "architecture": describe_architecture(config["backbone"], config.get("temporal", "reference"))
        if config.get("backbone")
        else "not recorded",
        "image_size": config.get("image_size"),
        "score_definition": score_definition(config.get("aggregation")),
        "threshold": threshold,
        "band": band,
        "fake_from": threshold + band if threshold is not None and band is not None else None,
        "real_below": threshold - band if threshold is not None and band is not None else None,
        "test": test,
        "splits": [
            (name, counts.get("REAL", 0), counts.get("FAKE", 0))
            for name, counts in splits.items()
            if isinstance(counts, dict)
        ],
        "weaknesses": weaknesses,
        "validation": validation,
        "notes": detector.notes,
    }
