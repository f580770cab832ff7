"""Forms: the upload (shared by the page and the API), sign-up and API tokens."""

import logging

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm

from ml_core.constants import DEFAULT_FRAMES, VIDEO_EXTENSIONS, VIDEO_FORMATS

from . import uploads, validators
from .models import FRAME_CHOICES, ApiToken

logger = logging.getLogger(__name__)


class SubmissionForm(forms.Form):
    video = forms.FileField(
        label="Video",
        widget=forms.ClearableFileInput(attrs={"accept": "video/*," + ",".join(VIDEO_EXTENSIONS)}),
    )
    frames = forms.TypedChoiceField(
        label="Frames to analyse",
        choices=[(n, f"{n} frames") for n in FRAME_CHOICES],
        coerce=int,
        initial=DEFAULT_FRAMES,
        required=False,
        empty_value=DEFAULT_FRAMES,
        help_text="Sampled evenly across the whole video. More frames: a steadier verdict, a longer wait.",
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
        self.checked = uploads.check_video(upload)
        return upload

    def save(self, owner):
        """Store the checked video, create the submission and put it in line."""
        data = self.cleaned_data
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
