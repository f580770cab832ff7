"""Forms behind the admin: registering a checkpoint upload, and choosing a model for a re-run."""

import hashlib
import logging

from django import forms

from ml_core.errors import CheckpointError

from ..models import DetectorModel

logger = logging.getLogger(__name__)


def uploaded_sha256(upload):
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    return digest.hexdigest()


class DetectorModelUploadForm(forms.ModelForm):
    """Add form: the checkpoint is validated and installed by detector.registry during clean().

    Installing in clean() means a bad file is reported on the form with the loader's message and
    nothing is saved (install_checkpoint stores neither row nor file when the load fails).
    """

    checkpoint_file = forms.FileField(
        label="Checkpoint file",
        help_text="A .pt file in our format or a reference-app state_dict (keep the reference file name, "
        "e.g. model_87_acc_20_frames_final_data.pt: it gives the frame count).",
    )
    activate = forms.BooleanField(
        required=False, help_text="Make this the model that new analyses use (replaces the active one)."
    )

    class Meta:
        model = DetectorModel
        fields = ["name", "notes"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["name"].required = False
        self.fields[
            "name"
        ].help_text = "Leave empty to use the name stored in the checkpoint (or its file name)."

    def clean(self):
        cleaned = super().clean()
        upload = cleaned.get("checkpoint_file")
        if upload is None or self.errors:
            return cleaned
        sha256 = uploaded_sha256(upload)
        existing = DetectorModel.objects.filter(sha256=sha256).first()
        if existing is not None:
            raise forms.ValidationError(
                "This checkpoint is already registered as %(model)s.",
                params={"model": existing},
                code="duplicate",
            )
        from ..registry import install_checkpoint

        try:
            installed = install_checkpoint(
                upload, name=cleaned.get("name") or None, notes=cleaned.get("notes", "")
            )
        except CheckpointError as exc:
            logger.info("refused checkpoint upload %s: %s", upload.name, exc.detail or exc)
            message = exc.user_message
            if exc.detail and exc.detail not in message:
                message = f"{message} ({exc.detail})"
            raise forms.ValidationError(message, code=exc.code) from exc
        # The registry saved the row; the admin's save() then only writes name and notes again.
        self.instance = installed
        cleaned["name"] = cleaned.get("name") or installed.name
        cleaned["notes"] = cleaned.get("notes") or installed.notes
        return cleaned


class DetectorModelChangeForm(forms.ModelForm):
    class Meta:
        model = DetectorModel
        fields = ["name", "notes"]


class RerunForm(forms.Form):
    detector = forms.ModelChoiceField(
        queryset=DetectorModel.objects.all(),
        required=False,
        empty_label="The active model",
        label="Detector model",
        help_text="Earlier results stay in each submission's history.",
    )
