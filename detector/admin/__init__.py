"""The staff admin: submissions and their review (submissions.py), detector models (detectors.py)."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from ..models import User
from . import detectors, submissions  # noqa: F401  (their @admin.register runs on import)

admin.site.register(User, UserAdmin)
admin.site.site_header = "Deepfake detector administration"
admin.site.site_title = "Deepfake detector admin"
