"""Helpers for the worker tests: a user, an installed tiny model, a stored submission."""

from pathlib import Path

from django.core.files import File

from detector.models import Submission
from detector.registry import install_checkpoint
from tests.helpers.checkpoints import make_tiny_checkpoint
from tests.helpers.videos import make_blank_video, make_face_video
from tests.helpers.web import make_user

__all__ = ["make_user", "install_tiny_model", "stored_submission", "face_video", "blank_video"]


def install_tiny_model(tmp_path, activate=True, seed=0, **kwargs):
    path = make_tiny_checkpoint(Path(tmp_path) / f"tiny-{seed}.pt", seed=seed, **kwargs)
    return install_checkpoint(path, activate=activate)


def stored_submission(owner, video_path, frames=10, enqueue=False):
    """A submission whose video went through the storage API like an upload."""
    from detector.services import enqueue_analysis

    video_path = Path(video_path)
    submission = Submission(owner=owner, original_name=video_path.name, frames_requested=frames)
    submission._stored_extension = video_path.suffix.lower() or ".mp4"
    with open(video_path, "rb") as f:
        submission.video.save("upload" + submission._stored_extension, File(f), save=False)
    submission.size_bytes = video_path.stat().st_size
    submission.save()
    if enqueue:
        enqueue_analysis(submission)
    return submission


def face_video(tmp_path, name="face.mp4", **kwargs):
    return make_face_video(Path(tmp_path) / name, **({"count": 20} | kwargs))


def blank_video(tmp_path, name="blank.mp4"):
    return make_blank_video(Path(tmp_path) / name)
