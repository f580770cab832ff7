"""Celery jobs. `analyze_submission` runs on the GPU hosts; it relies only on the database, the
broker and Django's storage API, so web and workers can live on different machines.

Exactly-once, even with late acks and redelivery: the job claims its row with one conditional
UPDATE (queued -> running, attempts + 1, a claim token naming this process). A second delivery
finds nothing to claim and returns. A delivery after the holder died (its heartbeat is older than
the lease, or its process is gone from this host) takes the claim over. Every later write is
conditional on the token, so a worker that lost its claim can never save a second result.
"""

import logging
import os
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import (
    DatabaseError,
    InterfaceError,
    OperationalError,
    connection,
    transaction,
)
from django.db.models import F, Q
from django.utils import timezone

from ml_core.errors import CheckpointError, MlCoreError

from . import claims, services
from .models import FrameImage, Ping, Result, Submission

logger = logging.getLogger(__name__)

Status, Stage = Submission.Status, Submission.Stage

# Percentages the status page shows when each stage starts.
STAGE_PROGRESS = {
    Stage.DECODING: 5,
    Stage.FINDING_FACES: 15,
    Stage.CLASSIFYING: 55,
    Stage.EXPLAINING: 70,
    Stage.SAVING: 90,
}
# Worth another try later: the database, the storage or the GPU was briefly unavailable.
TRANSIENT_ERRORS = (OperationalError, InterfaceError, ConnectionError, TimeoutError)
MAX_RETRIES = 3


def generic_error_message(submission):
    return (
        "Something went wrong on our side while analysing this video. The error has been logged; "
        f"if you contact support, mention reference {submission.public_id}."
    )


def backoff(retries):
    return min(300, 15 * 2**retries)


class ClaimLost(Exception):
    """Another worker took this job over (ours was presumed dead) or the submission was deleted."""


@shared_task(name="detector.tasks.ping")
def ping(token):
    """Trivial job for the queue smoke test: proves a worker reaches the database."""
    Ping.objects.filter(token=token).update(handled_by=f"{socket.gethostname()}", handled_at=timezone.now())


@shared_task(name="detector.tasks.requeue_stuck")
def requeue_stuck():
    """Periodic recovery (beat): re-send jobs that were never sent, got lost, or lost their worker."""
    counts = services.requeue_stuck()
    if any(counts.values()):
        logger.info("requeue_stuck: %s", counts)
    return counts


@shared_task(
    bind=True,
    name="detector.tasks.analyze_submission",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=MAX_RETRIES,
)
def analyze_submission(self, submission_id):
    """Analyse one submission; safe to deliver any number of times."""
    job = AnalysisJob(submission_id)
    try:
        claimed = job.claim()
    except TRANSIENT_ERRORS as exc:  # e.g. the database is restarting: nothing claimed yet
        raise self.retry(exc=exc, countdown=backoff(self.request.retries)) from exc
    if not claimed:
        return "skipped"
    try:
        job.run()
        return "done"
    except ClaimLost:
        logger.warning("submission %s: claim lost (taken over or deleted); nothing saved", submission_id)
        job.delete_stored_files()
        return "lost"
    except MlCoreError as exc:
        # Typed errors about the video itself: the user can act on the message.
        logger.info("submission %s failed: %s (%s)", submission_id, exc.code, exc)
        job.fail(exc.user_message)
        return "failed"
    except SoftTimeLimitExceeded:
        logger.error("submission %s hit the soft time limit", submission_id)
        job.fail(
            "The analysis took too long and was stopped at the time limit. Try a shorter clip or "
            "fewer frames (a GPU worker handles long videos much faster)."
        )
        return "failed"
    except TRANSIENT_ERRORS as exc:
        if self.request.retries < self.max_retries and job.release():
            countdown = backoff(self.request.retries)
            logger.warning("submission %s: transient error %r; retry in %ss", submission_id, exc, countdown)
            raise self.retry(exc=exc, countdown=countdown) from exc
        logger.exception("submission %s: transient error, retries used up", submission_id)
        job.fail(generic_error_message(job.submission))
        return "failed"
    except Exception:
        logger.exception("submission %s: unexpected error", submission_id)
        job.fail(generic_error_message(job.submission))
        return "failed"
    finally:
        job.stop_heartbeat()
        job.remove_temp_files()


class Heartbeat(threading.Thread):
    """Refreshes `heartbeat_at` while the job runs, so a live holder keeps its claim."""

    def __init__(self, submission_id, token):
        super().__init__(name=f"heartbeat-{submission_id}", daemon=True)
        self.submission_id, self.token = submission_id, token
        self.stopped = threading.Event()
        self.lost = False

    def run(self):
        try:
            while not self.stopped.wait(claims.heartbeat_seconds()):
                try:
                    alive = Submission.objects.filter(
                        pk=self.submission_id, status=Status.RUNNING, claim_token=self.token
                    ).update(heartbeat_at=timezone.now())
                except DatabaseError:
                    logger.warning("heartbeat for submission %s failed", self.submission_id, exc_info=True)
                    continue
                if not alive:
                    self.lost = True
                    return
        finally:
            connection.close()  # this thread's own connection

    def stop(self):
        self.stopped.set()
        self.join(timeout=5)


class AnalysisJob:
    def __init__(self, submission_id):
        self.submission_id = submission_id
        self.submission = None
        self.token = claims.new_token()
        self.heartbeat = None
        self.workdir = None
        self.stored_names = []
        self.timings = {}
        self.stage_delay = float(os.environ.get("DETECTOR_TEST_STAGE_DELAY", "0") or 0)

    # Claiming ----------------------------------------------------------------------------------

    def claim(self):
        started = time.perf_counter()
        row = Submission.objects.filter(pk=self.submission_id).first()
        if row is None:
            logger.info("submission %s no longer exists; nothing to do", self.submission_id)
            return False
        now = timezone.now()
        claimable = Q(status=Status.QUEUED)
        if row.status == Status.RUNNING and claims.holder_is_gone(row.claim_token, row.heartbeat_at, now):
            # Take over from a dead holder, but only the very claim we judged dead.
            claimable = Q(status=Status.RUNNING, claim_token=row.claim_token)
        elif row.status != Status.QUEUED:
            logger.info("submission %s is %s; duplicate delivery ignored", self.submission_id, row.status)
            return False
        if services.model_for(row) is None:
            # Deliberately not an attempt: it starts when a model is installed.
            Submission.objects.filter(Q(pk=row.pk) & claimable).update(
                status=Status.QUEUED, stage=Stage.WAITING_MODEL, claim_token="", progress=0, updated_at=now
            )
            logger.info("submission %s waits for a detector model", row.pk)
            return False
        claimed = Submission.objects.filter(Q(pk=row.pk) & claimable).update(
            status=Status.RUNNING,
            attempts=F("attempts") + 1,
            claim_token=self.token,
            heartbeat_at=now,
            started_at=now,
            finished_at=None,
            stage=Stage.DECODING,
            progress=STAGE_PROGRESS[Stage.DECODING],
            error_message="",
            updated_at=now,
        )
        if not claimed:
            logger.info("submission %s was claimed by another delivery", self.submission_id)
            return False
        self.submission = Submission.objects.select_related("requested_detector").get(pk=row.pk)
        if self.submission.attempts > services.max_attempts():
            logger.error("submission %s: attempt %s is over the cap", row.pk, self.submission.attempts)
            self.fail(services.too_many_attempts_message())
            return False
        self.heartbeat = Heartbeat(row.pk, self.token)
        self.heartbeat.start()
        self.timings["claim"] = time.perf_counter() - started
        return True

    def stage(self, stage):
        if self.heartbeat is not None and self.heartbeat.lost:
            raise ClaimLost()
        now = timezone.now()
        updated = Submission.objects.filter(
            pk=self.submission_id, status=Status.RUNNING, claim_token=self.token
        ).update(stage=stage, progress=STAGE_PROGRESS[stage], heartbeat_at=now, updated_at=now)
        if not updated:
            raise ClaimLost()
        if self.stage_delay:
            time.sleep(self.stage_delay)  # test hook: time to kill the worker mid-job

    def release(self):
        """Give the claim back (queued) so a retry can take it. True when released."""
        try:
            self.stop_heartbeat()
            return bool(
                Submission.objects.filter(
                    pk=self.submission_id, claim_token=self.token, status=Status.RUNNING
                ).update(
                    status=Status.QUEUED,
                    stage=Stage.WAITING,
                    claim_token="",
                    progress=0,
                    updated_at=timezone.now(),
                )  # fmt: skip
            )
        except DatabaseError:
            logger.warning("could not release submission %s", self.submission_id, exc_info=True)
            return False

    def fail(self, message):
        self.delete_stored_files()
        try:
            services.fail_submission(self.submission_id, message, claim_token=self.token)
        except DatabaseError:
            # The row stays running; requeue_stuck picks it up once the heartbeat is stale.
            logger.exception("could not record the failure of submission %s", self.submission_id)

    def stop_heartbeat(self):
        if self.heartbeat is not None:
            self.heartbeat.stop()

    # The work -----------------------------------------------------------------------------------

    def run(self):
        from ml_core.media.extraction import extract_faces, probe

        from .worker_runtime import get_predictor

        total_started = time.perf_counter()
        submission = self.submission
        detector = services.model_for(submission)
        if detector is None:
            raise CheckpointError("no detector model", user_message="No detector model is installed.")

        # Decoding: copy the video locally (storage may be remote), check it, load the model.
        started = time.perf_counter()
        local_video = self.copy_video_to_temp(submission)
        self.timings["copy_video"] = time.perf_counter() - started
        info = probe(str(local_video))
        if info.duration > settings.UPLOAD_MAX_SECONDS:
            from ml_core.errors import VideoTooLong

            raise VideoTooLong(f"{info.duration:.0f}s > {settings.UPLOAD_MAX_SECONDS}s")
        started = time.perf_counter()
        predictor = get_predictor(detector)
        self.timings["model_load"] = time.perf_counter() - started
        self.stage(Stage.FINDING_FACES)

        started = time.perf_counter()
        overrides = {"detector": settings.DETECTOR_FACE_DETECTOR}
        if settings.DETECTOR_FACE_BOXES:
            overrides["boxes"] = settings.DETECTOR_FACE_BOXES
        config = predictor.extract_config(
            submission.frames_requested, max_duration=float(settings.UPLOAD_MAX_SECONDS), **overrides
        )
        extraction = extract_faces(str(local_video), config)
        self.timings["extract"] = time.perf_counter() - started
        self.stage(Stage.CLASSIFYING)

        # One backbone pass: Grad-CAM reuses that pass's activations (no second forward).
        started = time.perf_counter()
        prediction = predictor.predict(
            extraction,
            explain=settings.DETECTOR_EXPLAIN,
            on_explain=lambda: self.stage(Stage.EXPLAINING),
        )
        explain_seconds = prediction.timings.get("explain", 0.0)
        self.timings["predict"] = time.perf_counter() - started - explain_seconds
        if settings.DETECTOR_EXPLAIN:
            self.timings["explain"] = explain_seconds
        overlays = prediction.overlays
        self.stage(Stage.SAVING)

        started = time.perf_counter()
        result = self.save_result(submission, detector, info, extraction, prediction, overlays, total_started)
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

    def remove_temp_files(self):
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def store_image(self, frame_image, field_name, filename, image, ext):
        import cv2

        params = [cv2.IMWRITE_PNG_COMPRESSION, 1] if ext == ".png" else [cv2.IMWRITE_JPEG_QUALITY, 90]
        ok, encoded = cv2.imencode(ext, np.ascontiguousarray(image), params)
        if not ok:
            raise RuntimeError(f"could not encode {filename}")
        field = getattr(frame_image, field_name)
        field.save(filename + ext, ContentFile(encoded.tobytes()), save=False)
        self.stored_names.append(field.name)

    def delete_stored_files(self):
        if self.stored_names and self.submission is not None:
            services.delete_files(self.submission.video.storage, self.stored_names)
        self.stored_names = []

    def save_result(self, submission, detector, info, extraction, prediction, overlays, total_started):
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
        images_started = time.perf_counter()
        frames = []
        for identity in prediction.identities:
            faces = {frame.index: face for frame, face in extraction.track(identity.id)}
            identity_overlays = overlays.get(identity.id, [])
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
        result.details = {
            "video": info.to_dict() | {"path": ""},  # the worker's temp path means nothing later
            "frames_requested": submission.frames_requested,
            "frames_sampled": len(extraction.frames),
            "face_boxes": "exact" if extraction.stats.get("exact_boxes") is not None else "fast",
            "face_detector": extraction.config.detector,
            "contrast": extraction.config.contrast,
            "main_face_from_mtcnn": extraction.stats.get("main_face_from_mtcnn", 0),
            "missing_frames": extraction.missing_frames(),
            "warnings": list(extraction.warnings),
            "main_identity": prediction.main_identity,
            "decisive_identity": prediction.decisive_identity,
            "threshold": prediction.threshold,
            "uncertain_band": prediction.uncertain_band,
            "attempt": submission.attempts,
        }
        with transaction.atomic():
            now = timezone.now()
            locked = (
                Submission.objects.select_for_update()
                .filter(pk=submission.pk, status=Status.RUNNING, claim_token=self.token)
                .first()
            )
            if locked is None:
                raise ClaimLost()
            result.save()
            FrameImage.objects.bulk_create(frames)
            Submission.objects.filter(pk=submission.pk).update(
                status=Status.DONE,
                stage=Stage.FINISHED,
                progress=100,
                current_result=result,
                duration_seconds=info.duration,
                finished_at=now,
                heartbeat_at=now,
                updated_at=now,
                claim_token="",
                error_message="",
            )
        self.stored_names = []  # committed: they belong to the result now
        return result
