"""Project system checks, with stable ids (detector.E001...)."""

import os

from django.conf import settings
from django.core.checks import Error, register


@register()
def media_root_writable(app_configs, **kwargs):
    if settings.STORAGES["default"]["BACKEND"] != "django.core.files.storage.FileSystemStorage":
        return []
    root = settings.MEDIA_ROOT
    try:
        os.makedirs(root, exist_ok=True)
    except OSError as exc:
        return [Error(f"MEDIA_ROOT {root} cannot be created: {exc}", id="detector.E001")]
    if not os.access(root, os.W_OK):
        return [Error(f"MEDIA_ROOT {root} is not writable.", id="detector.E002")]
    return []
