"""The staff admin: submissions and their review (submissions.py), detector models (detectors.py)."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from ..models import User
from . import detectors, submissions  # noqa: F401  (their @admin.register runs on import)

admin.site.register(User, UserAdmin)
admin.site.site_header = "Deepfake detector administration"
admin.site.site_title = "Deepfake detector admin"
# The submissions list needs the width: with the app list beside it and the filters on the other
# side, its table was cut off after the status at 1280 px. Home and the breadcrumbs lead everywhere.
admin.site.enable_nav_sidebar = False
