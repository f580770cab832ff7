"""The JSON bodies of the API: a Submission and its current Result as plain dicts."""

from django.urls import reverse

from .. import presenters
from ..models import FrameImage


def submission_json(request, submission, *, full):
    absolute = request.build_absolute_uri
    body = {
        "id": str(submission.public_id),
        "url": absolute(reverse("api-submission-detail", kwargs={"public_id": submission.public_id})),
        "page_url": absolute(reverse("submission-detail", kwargs={"public_id": submission.public_id})),
        "original_name": submission.original_name,
        "size_bytes": submission.size_bytes,
        "duration_seconds": submission.duration_seconds,
        "frames_requested": submission.frames_requested,
        "status": submission.status,
        "stage": submission.stage,
        "progress": submission.progress if submission.status != submission.Status.DONE else 100,
        "created_at": submission.created_at.isoformat(),
        "finished_at": submission.finished_at.isoformat() if submission.finished_at else None,
        "verdict": None,
        "fake_probability": None,
    }
    result = presenters.current_result(submission)
    if result is not None and submission.status == submission.Status.DONE:
        body["verdict"] = result.verdict
        body["fake_probability"] = result.fake_probability
    if not full:
        return body
    status = presenters.status_payload(submission)
    body.update(
        {
            "stage_label": status["stage_label"],
            "message": status["message"],
            "queue_position": status["queue_position"],
            "waiting_for_model": status["waiting_for_model"],
            "error_message": status["error_message"],
            "video_url": (
                absolute(reverse("submission-video", kwargs={"public_id": submission.public_id}))
                if submission.video and not submission.media_purged_at
                else None
            ),
            "result": result_json(request, submission, result) if body["verdict"] else None,
            "fetch": status["fetch"],
            "source": source_json(submission),
        }
    )
    return body


def source_json(submission):
    """A link submission's provenance (None for an upload), with the ids of the owner's earlier
    submissions of the same fetched bytes."""
    provenance = presenters.provenance(submission)
    if provenance is None:
        return None
    return {
        "url": submission.source_url,
        "final_url": submission.source_final_url,
        "site": submission.source_site,
        "post_id": submission.source_post_id,
        "title": submission.source_title,
        "uploader": submission.source_uploader,
        "fetched_at": submission.fetched_at.isoformat() if submission.fetched_at else None,
        "sha256": submission.fetched_sha256,
        "same_media_as": [str(earlier.public_id) for earlier in provenance["earlier"]],
    }


def result_json(request, submission, result):
    frames = []
    for frame in FrameImage.objects.filter(result=result).order_by("identity", "position"):
        crop, overlay = presenters.frame_urls(submission, frame, absolute=request.build_absolute_uri)
        frames.append(
            {
                "id": frame.pk,
                "identity": frame.identity,
                "position": frame.position,
                "frame_index": frame.frame_index,
                "timestamp": frame.timestamp,
                "fake_probability": frame.fake_probability,
                "box": frame.box,
                "crop_url": crop,
                "overlay_url": overlay,
            }
        )
    model = presenters.model_summary(result)
    return {
        "id": str(result.public_id),
        "verdict": result.verdict,
        "fake_probability": result.fake_probability,
        "threshold": presenters.threshold_of(result),
        # How the score is made, how sure it is, and what it means for this model (as on the page).
        "score_definition": presenters.definition_of(result),
        "score_interval": presenters.interval_json(result),
        "uncertainty": presenters.uncertainty_words(result),
        "score_context": presenters.score_in_context(result),
        "frame_probabilities": result.frame_probabilities,
        "frame_timestamps": result.frame_timestamps,
        "identities": result.identities,
        "model": {
            "name": model["name"],
            "sha256": model["sha256"],
            "metrics": model["raw_metrics"],
            "card_url": request.build_absolute_uri(reverse("model-card")),
        },
        "device": result.device,
        "timings": result.timings,
        "processing_seconds": presenters.processing_seconds(submission, result),
        "frames": frames,
        "created_at": result.created_at.isoformat(),
    }
