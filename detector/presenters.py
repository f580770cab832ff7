"""What the pages and the API show about a submission, computed once for both."""

from django.urls import reverse

from ml_core.model.names import describe_architecture
from ml_core.model.test_figures import MIN_AUC, MIN_REALS, score_context

from . import services
from .charts import frame_probability_svg
from .models import FrameImage, Submission

Status, Stage = Submission.Status, Submission.Stage

VERDICT_STYLES = {"FAKE": "danger", "REAL": "success", "UNCERTAIN": "warning"}
STATUS_STYLES = {"queued": "secondary", "running": "primary", "done": "success", "failed": "danger"}
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
        "finished": submission.status in (Status.DONE, Status.FAILED),
        "error_message": submission.error_message if submission.status == Status.FAILED else "",
        "updated_at": submission.updated_at.isoformat() if submission.updated_at else None,
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
    return {"sentence": sentence, "caution": caution}


def threshold_of(result):
    details = result.details or {}
    return float(details.get("threshold", 0.5))


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
                "frames": by_identity.get(identity, []),
                "chart": frame_probability_svg(
                    probabilities, timestamps, threshold=threshold, label=f"Fake probability, person {number}"
                ),
            }
        )
    return groups


def result_context(submission, result):
    """Everything the result section of the page shows."""
    groups = identity_groups(submission, result)
    main = groups[0] if groups else None
    return {
        "result": result,
        "verdict_style": VERDICT_STYLES.get(result.verdict, "secondary"),
        "fake_percent": round(result.fake_probability * 100, 1),
        "model": model_summary(result),
        "score_context": score_in_context(result),
        "threshold": threshold_of(result),
        "chart": frame_probability_svg(
            result.frame_probabilities, result.frame_timestamps, threshold=threshold_of(result)
        ),
        "main_frames": main["frames"] if main else [],
        "people": groups,
        "several_people": len(groups) > 1,
        "has_overlays": any(f.overlay for g in groups for f in g["frames"]),
        "processing_seconds": processing_seconds(submission, result),
        "warnings": [w for w in (result.details or {}).get("warnings", []) if isinstance(w, str)],
    }
