import uuid

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from ml_core.constants import DEFAULT_FRAMES, MAX_FRAMES, MIN_FRAMES

from .media_files import attempt_folder, submission_folder

FRAME_CHOICES = [10, 20, 40, 60, 80, 100]


class User(AbstractUser):
    pass


def checkpoint_path(instance, filename):
    # Server-chosen name: the checkpoint's hash, never the uploaded name.
    return f"detectors/{instance.sha256}.pt"


def submission_video_path(instance, filename):
    # `filename` is ignored on purpose apart from an allow-listed extension set by the form.
    extension = getattr(instance, "_stored_extension", ".mp4")
    return f"{submission_folder(instance.public_id)}/video{extension}"


def frame_image_path(instance, filename):
    result = instance.result
    return f"{attempt_folder(result.submission.public_id, result.public_id)}/{filename}"


class DetectorModel(models.Model):
    name = models.CharField(max_length=200)
    checkpoint = models.FileField(upload_to=checkpoint_path, max_length=255)
    sha256 = models.CharField(max_length=64, unique=True)
    config = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    sequence_length = models.PositiveSmallIntegerField(null=True, blank=True)
    size_bytes = models.BigIntegerField(default=0)
    is_active = models.BooleanField(default=False)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"], condition=models.Q(is_active=True), name="one_active_detector"
            )
        ]

    def __str__(self):
        return f"{self.name} ({self.sha256[:12]})"

    @classmethod
    def active(cls):
        return cls.objects.filter(is_active=True).first()


class Submission(models.Model):
    class Status(models.TextChoices):
        FETCHING = "fetching", "Fetching"  # a link's media is being downloaded (detector.links)
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    class Stage(models.TextChoices):
        FETCH_WAITING = "fetch_waiting", "Waiting to fetch the link"
        FETCHING = "fetching", "Fetching the video from the link"
        WAITING = "waiting", "Waiting in queue"
        WAITING_MODEL = "waiting_model", "Waiting for a detector model"
        DECODING = "decoding", "Decoding"
        FINDING_FACES = "finding_faces", "Finding faces"
        CLASSIFYING = "classifying", "Classifying"
        EXPLAINING = "explaining", "Explaining"
        SAVING = "saving", "Saving"
        FINISHED = "finished", "Finished"

    class Decision(models.TextChoices):
        CONFIRMED_FAKE = "confirmed_fake", "Confirmed fake"
        CONFIRMED_REAL = "confirmed_real", "Confirmed real"
        INCONCLUSIVE = "inconclusive", "Inconclusive"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="submissions")
    video = models.FileField(upload_to=submission_video_path, max_length=255, blank=True)
    original_name = models.CharField(max_length=255, blank=True, help_text="Display text only.")
    size_bytes = models.BigIntegerField(default=0)
    duration_seconds = models.FloatField(null=True, blank=True)
    frames_requested = models.PositiveSmallIntegerField(
        default=DEFAULT_FRAMES, validators=[MinValueValidator(MIN_FRAMES), MaxValueValidator(MAX_FRAMES)]
    )
    # A re-run may ask for a given model; empty means the active one.
    requested_detector = models.ForeignKey(
        DetectorModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    stage = models.CharField(max_length=20, choices=Stage.choices, default=Stage.WAITING)
    progress = models.PositiveSmallIntegerField(default=0)
    attempts = models.PositiveSmallIntegerField(default=0)
    error_message = models.TextField(blank=True)
    current_result = models.ForeignKey(
        "Result", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    media_purged_at = models.DateTimeField(null=True, blank=True)
    # Worker bookkeeping (detector.worker): when the job message was last handed to the broker
    # (empty: not yet, e.g. the broker was down), who holds the claim, and its last sign of life.
    dispatched_at = models.DateTimeField(null=True, blank=True)
    claim_token = models.CharField(max_length=200, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    review_decision = models.CharField(max_length=20, choices=Decision.choices, blank=True, db_index=True)
    review_notes = models.TextField(blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="reviews"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)

    # Provenance of a submission made from a link (detector.links); empty for uploads.
    source_url = models.URLField(max_length=2000, blank=True, help_text="The link as given.")
    source_final_url = models.URLField(max_length=2000, blank=True, help_text="After redirects.")
    source_site = models.CharField(max_length=100, blank=True)
    source_post_id = models.CharField(max_length=200, blank=True)
    source_title = models.CharField(max_length=500, blank=True)
    source_uploader = models.CharField(max_length=300, blank=True)
    fetched_at = models.DateTimeField(null=True, blank=True)
    fetched_sha256 = models.CharField(max_length=64, blank=True, db_index=True)
    # The fetch job's progress and its runs (each delivery that claimed the row).
    fetch_bytes = models.BigIntegerField(default=0)
    fetch_total_bytes = models.BigIntegerField(null=True, blank=True)
    fetch_attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["owner", "-created_at"])]
        permissions = [("review_submission", "Can record a human review of a submission")]

    def __str__(self):
        return f"{self.original_name or 'video'} ({self.public_id})"

    @property
    def is_finished(self):
        """Done or failed: what may be re-run, reported on, or purged (see FINISHED)."""
        return self.status in FINISHED


# The statuses an analysis ends in: the one rule for re-runs, reports, the page and retention.
FINISHED = (Submission.Status.DONE, Submission.Status.FAILED)


class Result(models.Model):
    class Verdict(models.TextChoices):
        REAL = "REAL", "Real"
        FAKE = "FAKE", "Fake"
        UNCERTAIN = "UNCERTAIN", "Uncertain"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="results")
    verdict = models.CharField(max_length=10, choices=Verdict.choices, db_index=True)
    fake_probability = models.FloatField()
    frame_probabilities = models.JSONField(default=list, blank=True)
    frame_timestamps = models.JSONField(default=list, blank=True)
    identities = models.JSONField(default=list, blank=True)
    detector = models.ForeignKey(
        DetectorModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="results"
    )
    # Copied from the model so the record survives the model's deletion.
    model_name = models.CharField(max_length=200)
    model_sha256 = models.CharField(max_length=64, db_index=True)
    device = models.CharField(max_length=40, blank=True)
    timings = models.JSONField(default=dict, blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.verdict} {self.fake_probability:.3f}"  # as the admin shows P(fake)


def reviewer_agrees(verdict="current_result__verdict", decision="review_decision"):
    """Q: the machine's verdict (at lookup path `verdict`) is what the reviewer confirmed (`decision`).

    The defaults filter submissions by their current result; other paths reach it from elsewhere.
    """
    return Q(**{verdict: Result.Verdict.FAKE, decision: Submission.Decision.CONFIRMED_FAKE}) | Q(
        **{verdict: Result.Verdict.REAL, decision: Submission.Decision.CONFIRMED_REAL}
    )


class FrameImage(models.Model):
    """One face crop exactly as the model saw it, with its Grad-CAM overlay."""

    result = models.ForeignKey(Result, on_delete=models.CASCADE, related_name="frames")
    position = models.PositiveSmallIntegerField()
    frame_index = models.PositiveIntegerField()
    timestamp = models.FloatField()
    identity = models.SmallIntegerField(default=0)
    box = models.JSONField(default=list, blank=True)
    fake_probability = models.FloatField(null=True, blank=True)
    crop = models.FileField(upload_to=frame_image_path, max_length=255, blank=True)
    overlay = models.FileField(upload_to=frame_image_path, max_length=255, blank=True)

    class Meta:
        ordering = ["result", "identity", "position"]
        constraints = [
            models.UniqueConstraint(fields=["result", "identity", "position"], name="one_image_per_slot")
        ]

    def __str__(self):
        return f"frame {self.frame_index} (identity {self.identity})"


class ApiToken(models.Model):
    """A per-user API token; only its SHA-256 is stored, the secret is shown once."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"


class Ping(models.Model):
    """Written by the `ping` task: proves a real worker reaches the database."""

    token = models.CharField(max_length=64, unique=True)
    handled_by = models.CharField(max_length=200, blank=True)
    handled_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return self.token
