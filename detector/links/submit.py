"""A link becomes a submission: checked at once (a URL, http/https, no credentials, not an internal
address literal, the owner's hourly allowance), then the fetch job is sent (detector.links.jobs)."""

import logging
from datetime import timedelta
from functools import partial

from celery import current_app
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from .. import validators
from ..models import Submission
from . import addresses, client
from .errors import BlockedAddress, LinkError, RateLimited

logger = logging.getLogger(__name__)

Status, Stage = Submission.Status, Submission.Stage

# Sent by name, as services does for the analysis.
FETCH_TASK = "detector.tasks.fetch_link"
MAX_URL_LENGTH = 2000


def check_link(url):
    """The link cleaned of surrounding blanks, or ValidationError with the LinkError's message."""
    url = (url or "").strip()
    try:
        if len(url) > MAX_URL_LENGTH:
            raise LinkError(f"This link is longer than {MAX_URL_LENGTH} characters.")
        parts = client.check_url(url)
        allow_private = settings.LINK_ALLOW_PRIVATE_ADDRESSES
        literal = addresses.literal_address(parts.hostname)
        # Refused at once when the host says so by itself; names are resolved by the job.
        if literal is not None and not addresses.is_allowed(literal, allow_private=allow_private):
            raise BlockedAddress()
        if parts.hostname.lower().rstrip(".") == "localhost" and not allow_private:
            raise BlockedAddress()
    except LinkError as exc:
        raise ValidationError(exc.message, code=exc.code) from exc
    return url


def _rate_limit_message(limit):
    return (
        f"You have submitted {limit} links in the last hour, the most allowed. "
        "Try again later, or upload the video file instead."
    )


def create_link_submission(owner, url, frames):
    """Create a submission for `url` in the `fetching` state and send its fetch job once committed.
    Raises ValidationError (bad link, code from links.errors) or RateLimited."""
    url = check_link(url)
    limit = settings.LINK_RATE_LIMIT_PER_HOUR
    with transaction.atomic():
        # One link submission at a time per user, so two requests at once cannot both pass the count.
        get_user_model().objects.select_for_update().filter(pk=owner.pk).first()
        since = timezone.now() - timedelta(hours=1)
        recent = Submission.objects.filter(owner=owner, created_at__gte=since).exclude(source_url="")
        if recent.count() >= limit:
            raise RateLimited(_rate_limit_message(limit))
        submission = Submission.objects.create(
            owner=owner,
            source_url=url,
            original_name=validators.clean_display_name(client.check_url(url).hostname),
            frames_requested=frames,
            status=Status.FETCHING,
            stage=Stage.FETCH_WAITING,
            enqueued_at=timezone.now(),
        )
        transaction.on_commit(partial(dispatch_fetch, submission.pk))
    return submission


def dispatch_fetch(submission_id):
    """Send the fetch job now; never raises (the recovery re-sends what was not sent)."""
    try:
        current_app.tasks[FETCH_TASK].apply_async(args=[submission_id])
    except Exception:
        logger.warning(
            "could not send the fetch job of submission %s; requeue_stuck will", submission_id, exc_info=True
        )
        return False
    Submission.objects.filter(pk=submission_id, status=Status.FETCHING).update(dispatched_at=timezone.now())
    return True
