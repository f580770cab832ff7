"""Rows and files for the web tests: users, stored submissions, finished results with images."""

import cv2
import numpy as np
from django.core.files.base import ContentFile

from detector.models import DetectorModel, FrameImage, Result, Submission
from detector.tokens import create_token

PASSWORD = "correct-horse-battery-staple-42"
VIDEO_BYTES = bytes(range(256)) * 40  # 10,240 bytes: enough to test byte ranges


def make_user(username="alice", *, staff=False, reviewer=False, password=PASSWORD):
    """A user; `reviewer`: staff in the "reviewer" group (may open anyone's submission, read-only)."""
    from django.contrib.auth.models import Group, Permission

    from detector.models import User

    user = User.objects.create_user(
        username=username, email=f"{username}@example.com", password=password, is_staff=staff or reviewer
    )
    if reviewer:
        group, _ = Group.objects.get_or_create(name="reviewer")
        group.permissions.add(
            Permission.objects.get(content_type__app_label="detector", codename="view_submission")
        )
        user.groups.add(group)
    return user


def token_for(user, name="test"):
    return create_token(user, name)[1]


def image_bytes(extension=".png", value=128, size=16):
    ok, data = cv2.imencode(extension, np.full((size, size, 3), value, np.uint8))
    assert ok
    return data.tobytes()


def make_submission(owner, *, name="clip.mp4", status="queued", stage="waiting", data=VIDEO_BYTES, **fields):
    """A submission whose (fake) video went through the storage API like an upload."""
    submission = Submission(
        owner=owner, original_name=name, status=status, stage=stage, size_bytes=len(data), **fields
    )
    submission._stored_extension = ".mp4"
    submission.video.save("video.mp4", ContentFile(data), save=False)
    submission.save()
    return submission


def make_detector(name="tiny-test-model", sha256="ab" * 32, metrics=None):
    return DetectorModel.objects.create(
        name=name, sha256=sha256, metrics=metrics if metrics is not None else {"val_auc": 0.912}
    )


def make_result(
    submission, *, verdict="FAKE", fake_probability=0.91, identities=(0,), frames=3, overlays=True
):
    """A finished result with crops (PNG) and overlays (JPEG) per identity, set as current."""
    detector = DetectorModel.objects.filter(sha256="ab" * 32).first() or make_detector()
    people = []
    for identity in identities:
        probabilities = [round(0.2 + 0.25 * i, 3) for i in range(frames)]
        people.append(
            {
                "id": identity,
                "label": verdict if identity == identities[0] else "REAL",
                "fake_probability": fake_probability if identity == identities[0] else 0.1,
                "frame_probabilities": probabilities,
                "frame_indices": [i * 5 for i in range(frames)],
                "timestamps": [i * 0.5 for i in range(frames)],
            }
        )
    result = Result.objects.create(
        submission=submission,
        verdict=verdict,
        fake_probability=fake_probability,
        frame_probabilities=people[0]["frame_probabilities"],
        frame_timestamps=people[0]["timestamps"],
        identities=people,
        detector=detector,
        model_name=detector.name,
        model_sha256=detector.sha256,
        device="cpu",
        timings={"worker": {"total": 4.2}},
        details={"threshold": 0.5, "main_identity": identities[0], "warnings": []},
    )
    for person in people:
        for position in range(frames):
            frame = FrameImage(
                result=result,
                position=position,
                frame_index=person["frame_indices"][position],
                timestamp=person["timestamps"][position],
                identity=person["id"],
                box=[10, 50, 50, 10],
                fake_probability=person["frame_probabilities"][position],
            )
            stem = f"i{person['id']}_{position:03d}"
            frame.crop.save(f"{stem}_crop.png", ContentFile(image_bytes(".png")), save=False)
            if overlays:
                frame.overlay.save(f"{stem}_cam.jpg", ContentFile(image_bytes(".jpg", 200)), save=False)
            frame.save()
    submission.status = Submission.Status.DONE
    submission.stage = Submission.Stage.FINISHED
    submission.progress = 100
    submission.current_result = result
    submission.save()
    return result
