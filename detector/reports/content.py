"""What a report says about a submission, as plain JSON-ready data, built from its rows.

The wording of the verdict and of the score in context comes from detector.presenters, so the
report says what the result page says. Everything here is facts about the upload, the analysis,
the model and the software; the signature (signing.py) and the PDF (pdf.py) are built on top.
"""

import hashlib
import math
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


def source(submission):
    """Where the video came from: a link's provenance (detector.links), or an uploaded file.

    Inside the signed report, so an edited address or fetched SHA-256 fails verification.
    """
    if not submission.source_url:
        return {"kind": "upload", "description": "uploaded file"}
    return {
        "kind": "link",
        "description": "fetched from a link",
        "url": submission.source_url,
        "final_url": submission.source_final_url or None,
        "site": submission.source_site or None,
        "post_id": submission.source_post_id or None,
        "title": submission.source_title or None,
        "uploader": submission.source_uploader or None,
        "fetched_at": _iso(submission.fetched_at),
        "fetched_sha256": submission.fetched_sha256 or None,
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


def _training_sentence(splits):
    """ "Trained on 114 videos (45 real, 69 fake); tested on 47 held-out videos (19 real, 28 fake)." """
    counts = {name: (real, fake) for name, real, fake in splits}
    if "train" not in counts:
        return None
    sentence = (
        f"Trained on {sum(counts['train'])} videos ({counts['train'][0]} real, {counts['train'][1]} fake)"
    )
    if "test" in counts:
        real, fake = counts["test"]
        sentence += f"; tested on {real + fake} held-out videos ({real} real, {fake} fake)"
    return sentence + "."


def model_facts(result):
    """The model as its page shows it (presenters.model_card), for the model that made this result.

    A model deleted since keeps its name and SHA-256 (copied onto the result); nothing else is known.
    """
    summary = presenters.model_summary(result)
    detector = result.detector if result.detector_id else None
    card = presenters.model_card(detector) if detector is not None else None
    facts = {
        "name": result.model_name,
        "sha256": result.model_sha256,
        "architecture": summary["architecture"] or None,
        "score_definition": presenters.definition_of(result),
        "training_data": None,
        "test_figures": None,
        "validation_metrics": {label: value for label, value in summary["metrics"]},
        "known_weaknesses": [],
    }
    if card is None:
        return facts
    test = card["test"]
    record = (detector.metrics or {}).get("test_scores") or {}
    context = score_context(record, record["threshold"]) if test and "threshold" in record else None
    facts.update(
        training_data=_training_sentence(card["splits"]),
        test_figures={
            "real_videos": test["reals"],
            "fake_videos": test["fakes"],
            "auc": _number(test["auc"], 4),
            "c40_auc": _number(test.get("c40_auc"), 4),
            "threshold": _number(card["threshold"], 4),
            "false_positive_rate": _number(context.false_positive_rate, 4) if context else None,
            "false_positives": test["false_positives"],
            "fakes_detected": test["detected"],
            "by_method": test["methods"],
        }
        if test
        else None,
        validation_metrics={label: value for label, value in card["validation"]},
        known_weaknesses=card["weaknesses"],
    )
    return facts


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
        "interval": presenters.interval_json(result),
        "uncertainty": presenters.uncertainty_words(result) or None,
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
            "face_detector": details.get("face_detector"),
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
    if not submission.is_finished:
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
        "source": source(submission),
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
