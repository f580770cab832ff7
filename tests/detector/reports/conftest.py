"""Finished submissions to report on: a FAKE one (20 crops with overlays, reviewed, re-run once)."""

import cv2
import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from detector.models import FrameImage
from tests.helpers.web import make_result, make_submission

FRAMES = 20
VIDEO_FACTS = {
    "width": 1280,
    "height": 720,
    "fps": 25.0,
    "codec": "h264",
    "container": "mp4",
    "duration": 8.0,
    "frame_count": 200,
}


def face_like(value, size=160):
    """A PNG/JPEG-able picture with some structure (a print test needs more than a flat square)."""
    image = np.full((size, size, 3), 90, np.uint8)
    cv2.ellipse(image, (size // 2, size // 2), (size // 3, size // 2 - 10), 0, 0, 360, (120, 150, 200), -1)
    cv2.circle(image, (size // 3, size // 2 - 15), 8, (40, 40, 40), -1)
    cv2.circle(image, (2 * size // 3, size // 2 - 15), 8, (40, 40, 40), -1)
    cv2.line(image, (size // 3, size - 45), (2 * size // 3, size - 45), (60, 60, 160), 4)
    cv2.putText(image, str(value), (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1)
    return image


def encode(image, extension):
    ok, data = cv2.imencode(extension, image)
    assert ok
    return data.tobytes()


def realistic_result(submission, *, verdict, fake_probability, frames=FRAMES):
    """A result like the worker's: scores in [0, 1], timestamps across the clip, crops and overlays."""
    result = make_result(submission, verdict=verdict, fake_probability=fake_probability, frames=frames)
    rng = np.random.default_rng(0)
    centre = fake_probability
    scores = [round(float(np.clip(centre + rng.normal(0, 0.08), 0.01, 0.99)), 4) for _ in range(frames)]
    times = [round(i * 8.0 / frames, 2) for i in range(frames)]
    person = {**result.identities[0], "frame_probabilities": scores, "timestamps": times}
    result.identities = [person]
    result.frame_probabilities, result.frame_timestamps = scores, times
    result.details = {
        **result.details,
        "video": VIDEO_FACTS,
        "frames_requested": frames,
        "frames_sampled": frames,
        "missing_frames": [],
        "uncertain_band": 0.1,
    }
    result.save()
    for frame in FrameImage.objects.filter(result=result).order_by("position"):
        frame.fake_probability, frame.timestamp = scores[frame.position], times[frame.position]
        picture = face_like(frame.position)
        frame.crop.save(f"c{frame.position}.png", ContentFile(encode(picture, ".png")), save=False)
        heat = cv2.applyColorMap(picture[:, :, 2], cv2.COLORMAP_JET)
        frame.overlay.save(f"o{frame.position}.jpg", ContentFile(encode(heat, ".jpg")), save=False)
        frame.save()
    return result


@pytest.fixture
def finished(owner):
    submission = make_submission(owner, name="interview.mp4")
    make_result(submission, verdict="REAL", fake_probability=0.31, frames=2)
    realistic_result(submission, verdict="FAKE", fake_probability=0.913)
    submission.refresh_from_db()
    submission.review_decision = submission.Decision.CONFIRMED_FAKE
    submission.review_notes = "Lip sync drifts at 0:04."
    submission.reviewed_by = owner
    submission.reviewed_at = timezone.now()
    submission.save()
    return submission


FETCHED_SHA256 = "5e" * 32
PROVENANCE = {
    "source_url": "https://video.example.org/watch?v=abc123",
    "source_final_url": "https://cdn.example.org/media/abc123.mp4",
    "source_site": "example.org",
    "source_post_id": "abc123",
    "source_title": "Minister interview, 3 June",
    "source_uploader": "Newsroom Desk",
    "fetched_sha256": FETCHED_SHA256,
}


@pytest.fixture
def fetched(owner):
    """A finished REAL submission whose video was fetched from a link, with its provenance."""
    submission = make_submission(
        owner, name="video.example.org", fetched_at=timezone.now(), status="done", **PROVENANCE
    )
    realistic_result(submission, verdict="REAL", fake_probability=0.12)
    submission.refresh_from_db()
    return submission
