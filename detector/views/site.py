"""Site-wide odds and ends that belong to no feature."""

from django.shortcuts import redirect
from django.templatetags.static import static
from django.views.decorators.http import require_safe


@require_safe
def favicon(request):
    # Every page names its icon; this answers browsers that ask for /favicon.ico anyway (the JSON
    # API, a crop opened on its own) instead of logging a 404 each time.
    return redirect(static("favicon.svg"), permanent=True)
