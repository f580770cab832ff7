"""One analysis: copy the video locally, probe it, find faces, predict, then store the crops,
overlays and Result. Every write to the submission row goes through the job's claim (worker.claims).
"""

import logging
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction

from ml_core.errors import CheckpointError, MlCoreError

from .. import media_files, services
from ..models import FrameImage, Result, Submission
from .claims import Claim

logger = logging.getLogger(__name__)

Status, Stage = Submission.Status, Submission.Stage


class AnalysisJob:
    def __init__(self, submission_id):
        self.submission_id = submission_id
        self.submission = None
        self.claim = Claim(submission_id)
        self.workdir = None
        # This attempt's own folder for crops and overlays (named after its Result's UUID), set
        # before the first image is written and cleared once the rows that reference it commit.
        self.attempt_folder = None
        self.timings = {}

    def take_claim(self):
        """True when this delivery holds the job and should run it."""
        started = time.perf_counter()
        self.submission = self.claim.take()
        if self.submission is None:
            return False
        self.timings["claim"] = time.perf_counter() - started
        return True

    def stage(self, stage):
        self.claim.advance(stage)
        if settings.DETECTOR_TEST_STAGE_DELAY:
            time.sleep(settings.DETECTOR_TEST_STAGE_DELAY)  # fault tests: time to kill the worker mid-job

    def fail(self, message):
        self.delete_stored_files()
        self.claim.fail(message)

    def clean_up(self):
        """Remove what this attempt leaves behind unless it committed: the local temp folder, and
        the attempt's folder of images (all of it, a file cut short by a full disk included)."""
        self.delete_stored_files()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def run(self):
        from ml_core.inference.analysis import analyse

        from .runtime import get_predictor

        total_started = time.perf_counter()
        submission = self.submission
        detector = services.model_for(submission)
        if detector is None:
            raise CheckpointError("no detector model", user_message="No detector model is installed.")

        # Decoding: copy the video locally (storage may be remote); analyse probes it before the
        # model is loaded.
        started = time.perf_counter()
        local_video = self.copy_video_to_temp(submission)
        self.timings["copy_video"] = time.perf_counter() - started
        analysis = analyse(
            local_video,
            lambda: get_predictor(detector),
            frames=submission.frames_requested,
            max_duration=float(settings.UPLOAD_MAX_SECONDS),
            explain=settings.DETECTOR_EXPLAIN,
            on_stage=lambda name: self.stage(Stage(name)),
            # Explicit departures from the model's crop recipe; empty settings mean none.
            detector=settings.DETECTOR_FACE_DETECTOR,
            boxes=settings.DETECTOR_FACE_BOXES,
        )
        self.timings.update(analysis.timings)
        self.stage(Stage.SAVING)

        started = time.perf_counter()
        result = self.save_result(submission, detector, analysis, total_started)
        self.timings["save"] = time.perf_counter() - started
        logger.info(
            "submission %s: %s p_fake=%.3f in %.2fs (%s)",
            submission.pk,
            result.verdict,
            result.fake_probability,
            time.perf_counter() - total_started,
            ", ".join(f"{k}={v:.3f}" for k, v in self.timings.items()),
        )

    def copy_video_to_temp(self, submission):
        if not submission.video or not submission.video.storage.exists(submission.video.name):
            raise MlCoreError(
                f"video file {submission.video.name!r} missing",
                user_message="The uploaded video is no longer available; upload it again.",
            )
        self.workdir = Path(tempfile.mkdtemp(prefix=f"analysis-{submission.public_id}-"))
        target = self.workdir / ("video" + (Path(submission.video.name).suffix.lower() or ".mp4"))
        with submission.video.open("rb") as src, open(target, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
        return target

    def store_image(self, frame_image, field_name, filename, image, ext):
        import cv2

        params = [cv2.IMWRITE_PNG_COMPRESSION, 1] if ext == ".png" else [cv2.IMWRITE_JPEG_QUALITY, 90]
        ok, encoded = cv2.imencode(ext, np.ascontiguousarray(image), params)
        if not ok:
            raise RuntimeError(f"could not encode {filename}")
        field = getattr(frame_image, field_name)
        field.save(filename + ext, ContentFile(encoded.tobytes()), save=False)

    def delete_stored_files(self):
        if self.attempt_folder is not None:
            media_files.delete_folder(services.media_storage(), self.attempt_folder)
        self.attempt_folder = None

    def save_result(self, submission, detector, analysis, total_started):
        extraction, prediction, info = analysis.extraction, analysis.prediction, analysis.video
        result = Result(
            submission=submission,
            verdict=prediction.label,
            fake_probability=prediction.fake_probability,
            frame_probabilities=prediction.frame_probabilities,
            frame_timestamps=prediction.timestamps,
            identities=[identity.to_dict() for identity in prediction.identities],
            detector=detector,
            model_name=detector.name,
            model_sha256=detector.sha256,
            device=prediction.device,
        )
        # Images first (slow, outside any transaction), then all rows in one transaction.
        self.attempt_folder = media_files.attempt_folder(submission.public_id, result.public_id)
        images_started = time.perf_counter()
        frames = []
        for identity in prediction.identities:
            faces = {frame.index: face for frame, face in extraction.track(identity.id)}
            identity_overlays = prediction.overlays.get(identity.id, [])
            for position, (frame_index, timestamp, p_fake) in enumerate(
                zip(identity.frame_indices, identity.timestamps, identity.frame_probabilities)
            ):
                face = faces[frame_index]
                frame = FrameImage(
                    result=result,
                    position=position,
                    frame_index=frame_index,
                    timestamp=timestamp,
                    identity=identity.id,
                    box=list(face.box),
                    fake_probability=p_fake,
                )
                name = f"i{identity.id}_{position:03d}_f{frame_index}"
                self.store_image(frame, "crop", f"{name}_crop", face.crop, ".png")
                if position < len(identity_overlays):
                    self.store_image(frame, "overlay", f"{name}_cam", identity_overlays[position], ".jpg")
                frames.append(frame)
        self.timings["save_images"] = time.perf_counter() - images_started
        self.timings["total"] = time.perf_counter() - total_started
        ml_seconds = sum(self.timings.get(k, 0.0) for k in ("model_load", "extract", "predict", "explain"))
        self.timings["worker_overhead"] = self.timings["total"] - ml_seconds
        result.timings = {
            "worker": dict(self.timings),
            "extraction": dict(extraction.timings),
            "prediction": dict(prediction.timings),
        }
        result.details = analysis.details() | {
            "frames_requested": submission.frames_requested,
            "attempt": submission.attempts,
        }
        with transaction.atomic():
            self.claim.lock()
            result.save()
            FrameImage.objects.bulk_create(frames)
            self.claim.finish(
                status=Status.DONE,
                stage=Stage.FINISHED,
                progress=100,
                current_result=result,
                duration_seconds=info.duration,
                error_message="",
            )
        self.attempt_folder = None  # committed: the images belong to the result now
        return result
