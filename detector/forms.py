"""Forms: the upload (shared by the page and the API), sign-up and API tokens."""

import logging

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm

from ml_core.constants import DEFAULT_FRAMES, VIDEO_EXTENSIONS, VIDEO_FORMATS

from . import uploads, validators
from .links import submit
from .models import FRAME_CHOICES, ApiToken

logger = logging.getLogger(__name__)


class SubmissionForm(forms.Form):
    """A video file, or a link to a post or video (detector.links): exactly one of the two."""

    video = forms.FileField(
        label="Video",
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": "video/*," + ",".join(VIDEO_EXTENSIONS)}),
    )
    link = forms.CharField(
        label="…or a link to a post or a video",
        required=False,
        # The length is checked by submit.check_link, with its own message.
        widget=forms.URLInput(attrs={"placeholder": "https://", "maxlength": submit.MAX_URL_LENGTH}),
        help_text="The service fetches the video itself and keeps where it came from. Public links only.",
    )
    frames = forms.TypedChoiceField(
        label="Frames to analyse",
        choices=[(n, f"{n} frames") for n in FRAME_CHOICES],
        coerce=int,
        initial=DEFAULT_FRAMES,
        required=False,
        empty_value=DEFAULT_FRAMES,
        # Measured with scripts/measure_frame_counts.py (the shipped model, the 29 shared clips).
        help_text=(
            "Sampled evenly across the whole video. Measured with the shipped model on 29 test clips: "
            "40 frames instead of 20 changed the verdict of 1 clip in 29 and narrowed the likely range "
            "from about 6 to 4 points (median), for a longer wait."
        ),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["video"].help_text = (
            f"{VIDEO_FORMATS}; up to {validators.describe_size(self.max_bytes)} "
            f"and {validators.describe_duration(self.max_seconds)}. Works best with one clearly visible face."
        )
        self.checked = None

    @property
    def max_bytes(self):
        from django.conf import settings

        return settings.UPLOAD_MAX_BYTES

    @property
    def max_seconds(self):
        from django.conf import settings

        return settings.UPLOAD_MAX_SECONDS

    def clean_video(self):
        upload = self.cleaned_data["video"]
        if upload and not self.data.get("link", "").strip():
            self.checked = uploads.check_video(upload)
        return upload

    def clean_link(self):
        link = self.cleaned_data["link"].strip()
        return submit.check_link(link) if link else ""

    def clean(self):
        data = super().clean()
        has_video, has_link = bool(self.files.get("video")), bool(self.data.get("link", "").strip())
        if has_video and has_link:
            raise forms.ValidationError(
                "Choose a video file or paste a link, not both.", code="video_and_link"
            )
        if not has_video and not has_link and not self.errors:
            self.add_error(
                "video", forms.ValidationError("Choose a video file or paste a link.", code="required")
            )
        return data

    def save(self, owner):
        """Store the checked video (or, for a link, send its fetch job), create the submission and
        put it in line. A link may raise links.errors.RateLimited."""
        data = self.cleaned_data
        if data.get("link"):
            return submit.create_link_submission(owner, data["link"], data["frames"])
        return uploads.store_video(owner, data["video"], data["frames"], checked=self.checked)


class SignupForm(UserCreationForm):
    email = forms.EmailField(required=True, help_text="Used only to reset your password.")

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username", "email")

    def clean_email(self):
        email = self.cleaned_data["email"].strip()
        if get_user_model().objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("An account with this email address already exists. Log in instead.")
        return email


class ApiTokenForm(forms.ModelForm):
    class Meta:
        model = ApiToken
        fields = ("name",)
        labels = {"name": "Token name"}
        help_texts = {"name": "Something to recognise it by, e.g. “laptop script”."}
