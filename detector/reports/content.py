"""What a report says about a submission, as plain JSON-ready data, built from its rows.

The wording of the verdict and of the score in context comes from detector.presenters, so the
report says what the result page says. Everything here is facts about the upload, the analysis,
the model and the software; the signature (signing.py) and the PDF (pdf.py) are built on top.
"""

import hashlib
import json
import math
import re
import subprocess  # nosec B404: a fixed git command, no user input
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from ml_core.model.test_figures import score_context

from .. import presenters
from ..models import FrameImage, Result, Submission

Status = Submission.Status
CHUNK = 1024 * 1024
CAVEAT = (
    "This report records what an automated classifier said about the faces in one video. "
    "A score is a statistical estimate from a model trained on a limited set of videos, not proof: "
    "the model can call a real video fake and miss a fake one, especially after heavy compression "
    "or with manipulation methods it never saw. Weigh it with other evidence (the source, the "
    "context, other copies of the video) before publishing or acting on it."
)
VERDICT_SENTENCES = {
    "FAKE": "The faces in this video look manipulated to the model.",
    "REAL": "The model found no sign of manipulation in the faces of this video.",
    "UNCERTAIN": "The model's score is too close to its threshold to call: treat it as undecided.",
}


class ReportNotReady(Exception):
    """The submission is queued or running: there is nothing to report yet."""

    def __init__(self, submission):
        self.status = submission.status
        super().__init__(
            f"This analysis is still {submission.get_status_display().lower()}: "
            "a report can be made once it has finished."
        )


def _iso(moment):
    return moment.isoformat() if moment else None


def _number(value, places=None):
    """A finite float (rounded when asked), or None: NaN and infinities have no JSON form."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return round(float(value), places) if places is not None else float(value)


def file_sha256(field):
    """SHA-256 of a stored file read through the storage API, or None when it is gone."""
    if not field:
        return None
    digest = hashlib.sha256()
    try:
        with field.open("rb") as handle:
            for chunk in iter(lambda: handle.read(CHUNK), b""):
                digest.update(chunk)
    except (OSError, ValueError):
        return None
    finally:
        field.close()
    return digest.hexdigest()


def software_version():
    """The release (REPORT_SOFTWARE_VERSION) or the git commit this code runs from, else "unknown"."""
    if settings.REPORT_SOFTWARE_VERSION:
        return settings.REPORT_SOFTWARE_VERSION
    try:
        done = subprocess.run(  # nosec B603 B607: fixed arguments
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=settings.BASE_DIR,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    commit = done.stdout.strip()
    return f"commit {commit}" if done.returncode == 0 and commit else "unknown"


def video_facts(submission, result):
    info = ((result.details or {}).get("video") or {}) if result else {}
    available = bool(submission.video) and not submission.media_purged_at
    return {
        "original_name": submission.original_name,
        "size_bytes": submission.size_bytes,
        # Not stored at upload: computed from the stored file, so it is the uploaded bytes.
        "sha256": file_sha256(submission.video) if available else None,
        "uploaded_at": _iso(submission.created_at),
        "duration_seconds": _number(submission.duration_seconds or info.get("duration"), 3),
        "width": info.get("width"),
        "height": info.get("height"),
        "frame_rate": _number(info.get("fps"), 3),
        "frame_count": info.get("frame_count"),
        "codec": info.get("codec") or None,
        # FFmpeg names demuxers, not formats ("mov,mp4,m4a,..."): the stored file's extension,
        # which the upload checks chose from an allow-list, says what kind of file it is.
        "container": info.get("container") or None,
        "file_type": Path(submission.video.name).suffix.lstrip(".").upper() or None
        if submission.video
        else None,
        "has_audio": info.get("has_audio"),
        "file_kept": available,
    }


def _interval(details_or_person, key="interval"):
    """{"low", "high", "level"} from a [low, high] pair the worker stored (ml_core.inference.score)."""
    raw = (details_or_person or {}).get(key)
    if isinstance(raw, dict):
        raw = [raw.get("low"), raw.get("high")]
    if isinstance(raw, list | tuple) and len(raw) == 2:
        low, high = _number(raw[0], 4), _number(raw[1], 4)
        if low is not None and high is not None:
            return {
                "low": low,
                "high": high,
                "level": _number((details_or_person or {}).get("interval_level")),
            }
    return None


def people(result):
    rows = []
    recorded = [i for i in (result.identities or []) if isinstance(i, dict) and "id" in i]
    main = (result.details or {}).get("main_identity")
    recorded.sort(key=lambda i: i["id"] != main)
    for number, person in enumerate(recorded, start=1):
        rows.append(
            {
                "person": number,
                "identity": person["id"],
                "verdict": person.get("label") or None,
                "fake_probability": _number(person.get("fake_probability"), 4),
                "interval": _interval(person),
                "frames": len(person.get("frame_probabilities") or []),
                "counted": person.get("counted", True),
            }
        )
    return rows


def evidence(result, person_numbers):
    """Every face crop the model saw: where, when, its score, and the SHA-256 of its images."""
    frames = FrameImage.objects.filter(result=result).order_by("identity", "position")
    return [
        {
            "id": frame.pk,
            "person": person_numbers.get(frame.identity),
            "position": frame.position,
            "frame_index": frame.frame_index,
            "timestamp": _number(frame.timestamp, 3),
            "fake_probability": _number(frame.fake_probability, 4),
            "crop_sha256": file_sha256(frame.crop),
            "overlay_sha256": file_sha256(frame.overlay),
        }
        for frame in frames
    ]


def shipped_model_files(sha256):
    """(metrics.json as a dict, MODEL_CARD.md text) of the model shipped beside the default
    checkpoint, when this is that model (its metrics.json names the same SHA-256); else ({}, "")."""
    folder = Path(settings.DETECTOR_DEFAULT_CHECKPOINT or ".").parent
    try:
        metrics = json.loads((folder / "metrics.json").read_text())
        card = (folder / "MODEL_CARD.md").read_text()
    except (OSError, ValueError):
        return {}, ""
    if not isinstance(metrics, dict) or metrics.get("sha256") != sha256:
        return {}, ""
    return metrics, card


def _known_weaknesses(card):
    """The bullets of the model card's "Where it fails" section, as plain sentences."""
    match = re.search(r"^## Where it fails[^\n]*\n(.*?)(?=^## |\Z)", card or "", re.M | re.S)
    if not match:
        return []
    bullets = re.split(r"^- ", match.group(1), flags=re.M)[1:]
    cleaned = [re.sub(r"\s+", " ", b.split("\n\n")[0]).replace("**", "").strip() for b in bullets]
    return [c for c in cleaned if c]


def model_facts(result):
    summary = presenters.model_summary(result)
    detector = result.detector if result.detector_id else None
    metrics = dict(detector.metrics or {}) if detector is not None else {}
    record = metrics.get("test_scores")
    context = score_context(record, result.fake_probability) if record else None
    test = metrics.get("test") if isinstance(metrics.get("test"), dict) else {}
    shipped, card = shipped_model_files(result.model_sha256)
    splits = metrics.get("split_counts") or shipped.get("split_counts")
    splits = splits if isinstance(splits, dict) else {}
    training = ""
    if splits.get("train"):
        train, tested = splits["train"], splits.get("test") or {}
        training = (
            f"Trained on {sum(train.values())} videos "
            f"({train.get('REAL', 0)} real, {train.get('FAKE', 0)} fake); "
            f"tested on {sum(tested.values())} held-out videos "
            f"({tested.get('REAL', 0)} real, {tested.get('FAKE', 0)} fake)."
        )
    return {
        "name": result.model_name,
        "sha256": result.model_sha256,
        "architecture": summary["architecture"] or None,
        "training_data": training or None,
        "test_figures": {
            "real_videos": context.real_count if context else None,
            "fake_videos": context.fake_count if context else None,
            "auc": _number((record or {}).get("auc"), 4)
            if record
            else _number((test.get("video") or {}).get("auc"), 4),
            "threshold": _number((record or {}).get("threshold", test.get("threshold")), 4),
            "false_positive_rate": _number(context.false_positive_rate, 4)
            if context
            else _number(test.get("false_positive_rate_real"), 4),
        },
        "validation_metrics": {label: value for label, value in summary["metrics"]},
        "known_weaknesses": _known_weaknesses(card),
    }


def review(submission):
    if not submission.review_decision:
        return None
    reviewer = submission.reviewed_by
    return {
        "decision": submission.review_decision,
        "decision_label": submission.get_review_decision_display(),
        "note": submission.review_notes,
        "reviewer": (reviewer.get_full_name() or reviewer.get_username()) if reviewer else None,
        "reviewed_at": _iso(submission.reviewed_at),
    }


def history(submission):
    """Every analysis of this video, oldest first: a re-run adds a line, it never replaces one."""
    return [
        {
            "result_id": str(row.public_id),
            "created_at": _iso(row.created_at),
            "verdict": row.verdict,
            "fake_probability": _number(row.fake_probability, 4),
            "model_name": row.model_name,
            "model_sha256": row.model_sha256,
            "current": row.pk == submission.current_result_id,
        }
        for row in Result.objects.filter(submission=submission).order_by("created_at", "id")
    ]


def analysis(submission, result):
    details = result.details or {}
    context = presenters.score_in_context(result)
    identities = people(result)
    missing = details.get("missing_frames")
    return {
        "result_id": str(result.public_id),
        "verdict": result.verdict,
        "verdict_sentence": VERDICT_SENTENCES.get(result.verdict, ""),
        "fake_probability": _number(result.fake_probability, 4),
        "interval": _interval(details, "score_interval"),
        "threshold": _number(presenters.threshold_of(result), 4),
        "uncertain_band": _number(details.get("uncertain_band"), 4),
        "score_in_context": context["sentence"],
        "score_caution": context["caution"] or None,
        "people": identities,
        "frames_requested": details.get("frames_requested", submission.frames_requested),
        "frames_sampled": details.get("frames_sampled"),
        "frames_analysed": FrameImage.objects.filter(result=result).count(),
        "frames_without_a_face": len(missing) if isinstance(missing, list) else None,
        "processing_seconds": _number(presenters.processing_seconds(submission, result), 2),
        "timings": result.timings or {},
        "device": result.device or None,
        "analysed_at": _iso(result.created_at),
        "warnings": [w for w in details.get("warnings", []) if isinstance(w, str)],
    }


def software(result):
    details = (result.details or {}) if result else {}
    return {
        "name": "deepfake-detector",
        "version": software_version(),
        "settings": {
            "face_detector": details.get("face_detector") or settings.DETECTOR_FACE_DETECTOR or None,
            "face_boxes": details.get("face_boxes") or None,
            "contrast": details.get("contrast"),
            "frames_requested": details.get("frames_requested"),
            "explain": settings.DETECTOR_EXPLAIN,
        },
    }


def build_content(submission, *, now=None, verify_url=None):
    """The report's content for a finished (done or failed) submission; ReportNotReady otherwise.

    `verify_url`: the address of this service's verify page, printed in the report when known.
    """
    if submission.status not in (Status.DONE, Status.FAILED):
        raise ReportNotReady(submission)
    result = presenters.current_result(submission) if submission.status == Status.DONE else None
    content = {
        "kind": "analysis" if result is not None else "failure",
        "generated_at": (now or timezone.now()).isoformat(),
        "submission": {
            "id": str(submission.public_id),
            "status": submission.status,
            "created_at": _iso(submission.created_at),
            "finished_at": _iso(submission.finished_at),
            "attempts": submission.attempts,
        },
        "video": video_facts(submission, result),
        "review": review(submission),
        "history": history(submission),
        "software": software(result),
        "caveat": CAVEAT,
        "verify_url": verify_url,
    }
    if result is None:
        content["failure"] = {
            "message": submission.error_message or "The analysis failed without a message.",
            "frames_requested": submission.frames_requested,
        }
        return content
    content["analysis"] = analysis(submission, result)
    content["model"] = model_facts(result)
    numbers = {p["identity"]: p["person"] for p in content["analysis"]["people"]}
    content["evidence"] = {"frames": evidence(result, numbers)}
    return content
