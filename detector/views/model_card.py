"""The active model's card, for every signed-in user: what it is, how it was tested, where it fails."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_GET

from .. import presenters
from ..models import DetectorModel


@login_required
@require_GET
def model_card(request):
    # No id in the URL: only the active model is shown, so nobody can enumerate installed ones.
    card = presenters.model_card(DetectorModel.active())
    return render(request, "detector/model_card.html", {"card": card})
