"""Who may see what. Every page, media download and API endpoint goes through these helpers.

Anyone who may not see an object gets a 404, never a 403: a stranger must not learn that a
submission id exists. Owners see their own submissions. Staff who review (active staff with the
`detector.view_submission` permission: the "reviewer" group, superusers) may also open anyone's
submission page and media, read-only: changes to other people's submissions go through the
admin, which checks its own permissions.
"""

import uuid

from django.http import Http404

from .models import FrameImage, Submission


def owned_submissions(user):
    """The submissions a user's own list shows (staff too: they browse others in the admin)."""
    if not user.is_authenticated:
        return Submission.objects.none()
    return Submission.objects.filter(owner=user)


def can_review(user):
    return bool(
        user.is_authenticated
        and user.is_active
        and user.is_staff
        and user.has_perm("detector.view_submission")
    )


def visible_submissions(user):
    """The submissions a user may open: their own, or all of them for reviewing staff."""
    if not user.is_authenticated or not user.is_active:
        return Submission.objects.none()
    if can_review(user):
        return Submission.objects.all()
    return Submission.objects.filter(owner=user)


def _as_uuid(public_id):
    if isinstance(public_id, uuid.UUID):
        return public_id
    try:
        return uuid.UUID(str(public_id))
    except (TypeError, ValueError):
        raise Http404("No such submission.") from None


def get_submission_for_user(user, public_id, *, owner_only=False):
    """The submission with this public id, or Http404 unless `user` owns it or reviews (staff).

    `owner_only`: for changes (delete): only the owner, whatever their staff status.
    """
    rows = owned_submissions(user) if owner_only else visible_submissions(user)
    submission = rows.filter(public_id=_as_uuid(public_id)).first()
    if submission is None:
        raise Http404("No such submission.")
    return submission


def get_frame_image_for_user(user, public_id, frame_id):
    """A face crop row of a submission the user may see (any of its results), else Http404."""
    submission = get_submission_for_user(user, public_id)
    frame = (
        FrameImage.objects.filter(pk=frame_id, result__submission=submission).select_related("result").first()
    )
    if frame is None:
        raise Http404("No such frame.")
    return submission, frame
