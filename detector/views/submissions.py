"""Submission pages: upload, list, detail (with live status), delete."""

import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from .. import media_files, presenters, services, validators
from ..access import get_submission_for_user, owned_submissions
from ..forms import SubmissionForm
from ..links.errors import RateLimited

logger = logging.getLogger(__name__)

PAGE_SIZE = 20


def _wants_json(request):
    # The upload script sends this so it can show errors without replacing the page.
    return request.headers.get("X-Requested-With") == "XMLHttpRequest"


def _too_large_message():
    return (
        f"This upload is larger than the {validators.describe_size(settings.UPLOAD_MAX_BYTES)} limit. "
        "Trim the video or re-encode it at a lower bitrate, then upload it again."
    )


@login_required
@require_http_methods(["GET", "POST"])
def submission_create(request):
    upload_error = ""
    if request.method == "POST" and validators.content_length_missing(request):
        upload_error, form, status = validators.LENGTH_REQUIRED_MESSAGE, SubmissionForm(), 411
        if _wants_json(request):
            return JsonResponse({"errors": {"video": [upload_error]}}, status=status)
    elif request.method == "POST" and validators.content_length_too_large(request):
        # Refused from the declared length alone: the body is never read or spooled.
        upload_error, form, status = _too_large_message(), SubmissionForm(), 413
        if _wants_json(request):
            return JsonResponse({"errors": {"video": [upload_error]}}, status=status)
    elif request.method == "POST":
        form = SubmissionForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                submission = form.save(request.user)
            except media_files.StorageError as exc:
                # Full (507) or refused (503): nothing was kept, and trying later may work.
                upload_error, status = exc.message, exc.status
                if _wants_json(request):
                    return JsonResponse({"errors": {"video": [upload_error]}}, status=status)
            except RateLimited as exc:
                upload_error, status = exc.message, 429
                if _wants_json(request):
                    return JsonResponse({"errors": {"link": [upload_error]}}, status=status)
            else:
                url = reverse("submission-detail", kwargs={"public_id": submission.public_id})
                if _wants_json(request):
                    return JsonResponse({"redirect": url}, status=201)
                return redirect(url)
        elif _wants_json(request):
            errors = {field: [str(e) for e in errs] for field, errs in form.errors.items()}
            return JsonResponse({"errors": errors}, status=400)
        else:
            status = 400
    else:
        form, status = SubmissionForm(), 200
    context = {
        "form": form,
        "upload_error": upload_error,
        "max_bytes": settings.UPLOAD_MAX_BYTES,
        "max_size_text": validators.describe_size(settings.UPLOAD_MAX_BYTES),
    }
    return render(request, "detector/submission_form.html", context, status=status)


@never_cache  # it shows verdicts: no shared or browser cache may keep a copy
@login_required
@require_GET
def submission_list(request):
    submissions = owned_submissions(request.user).select_related("current_result")
    page = Paginator(submissions, PAGE_SIZE).get_page(request.GET.get("page"))
    for submission in page:
        submission.status_style = presenters.STATUS_STYLES.get(submission.status, "secondary")
        result = submission.current_result
        submission.verdict_style = (
            presenters.VERDICT_STYLES.get(result.verdict, "secondary") if result else ""
        )
        if result:
            submission.fake_percent = presenters.percent(result.fake_probability)
            submission.threshold_percent = presenters.percent(presenters.threshold_of(result))
    context = {"page": page, "score_definition": presenters.SCORE_DEFINITION}
    return render(request, "detector/submission_list.html", context)


@never_cache  # it shows the verdict: no shared or browser cache may keep a copy
@login_required
@require_GET
def submission_detail(request, public_id):
    submission = get_submission_for_user(request.user, public_id)
    status = presenters.status_payload(submission)
    context = {
        "submission": submission,
        "provenance": presenters.provenance(submission),
        "status": status,
        "status_style": presenters.STATUS_STYLES.get(submission.status, "secondary"),
        "video_available": bool(submission.video) and not submission.media_purged_at,
    }
    result = presenters.current_result(submission)
    if submission.status == submission.Status.DONE and result is not None:
        context.update(presenters.result_context(submission, result))
    return render(request, "detector/submission_detail.html", context)


@never_cache
@login_required
@require_GET
def submission_status(request, public_id):
    submission = get_submission_for_user(request.user, public_id)
    return JsonResponse(presenters.status_payload(submission))


@login_required
@require_http_methods(["GET", "POST"])
def submission_delete(request, public_id):
    submission = get_submission_for_user(request.user, public_id, owner_only=True)
    if request.method == "POST":
        name = submission.original_name or "the video"
        services.delete_submission(submission)
        messages.success(request, f"Deleted “{name}” and its files.")
        return redirect("submission-list")
    return render(request, "detector/submission_confirm_delete.html", {"submission": submission})
