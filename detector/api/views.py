"""JSON API v1: token-authenticated submissions (list, create, detail, delete).

Plain Django views. They are csrf_exempt only because they authenticate with the
`Authorization: Token <secret>` header and never with the session cookie, so a forged
cross-site request carries no credentials. Same form, validators and ownership rules as
the pages.
"""

import json
from functools import wraps
from pathlib import Path

from django.conf import settings
from django.core.paginator import EmptyPage, PageNotAnInteger, Paginator
from django.http import Http404, HttpResponse, JsonResponse
from django.urls import reverse
from django.views import defaults
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

from .. import media_files, services, validators
from ..access import get_submission_for_user, owned_submissions
from ..forms import SubmissionForm
from ..links.errors import RateLimited
from ..tokens import user_from_authorization
from .serializers import submission_json

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
RETRY_AFTER_SECONDS = 300  # storage full or unavailable: a hint, an operator has to act first
RATE_LIMIT_RETRY_SECONDS = 600  # link submissions are counted per hour
OPENAPI_PATH = Path(settings.BASE_DIR) / "static" / "api" / "openapi.json"


def error(status, code, message, **extra):
    response = JsonResponse({"error": {"code": code, "message": message, **extra}}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Token realm="api"'
    return response


def api_view(methods):
    """Token auth (never the session), then the method check; JSON errors throughout."""

    def decorate(view):
        @csrf_exempt
        @never_cache
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            user = user_from_authorization(request)
            if user is None:
                return error(
                    401, "not_authenticated", "Send a valid API token: `Authorization: Token <secret>`."
                )
            if request.method not in methods:
                response = error(405, "method_not_allowed", f"{request.method} is not allowed here.")
                response["Allow"] = ", ".join(methods)
                return response
            request.api_user = user
            try:
                return view(request, *args, **kwargs)
            except Http404:
                return error(404, "not_found", "No such submission.")

        return wrapper

    return decorate


def _page_size(request):
    try:
        return max(1, min(MAX_PAGE_SIZE, int(request.GET.get("page_size", DEFAULT_PAGE_SIZE))))
    except ValueError:
        return DEFAULT_PAGE_SIZE


@api_view(["GET", "POST"])
def submission_collection(request):
    if request.method == "POST":
        return _create(request)
    paginator = Paginator(
        owned_submissions(request.api_user).select_related("current_result"), _page_size(request)
    )
    try:
        page = paginator.page(request.GET.get("page") or 1)
    except (EmptyPage, PageNotAnInteger):
        return error(404, "invalid_page", "That page does not exist.", pages=paginator.num_pages)

    def page_url(number):
        return request.build_absolute_uri(
            f"{reverse('api-submission-list')}?page={number}&page_size={paginator.per_page}"
        )

    return JsonResponse(
        {
            "count": paginator.count,
            "page": page.number,
            "pages": paginator.num_pages,
            "next": page_url(page.next_page_number()) if page.has_next() else None,
            "previous": page_url(page.previous_page_number()) if page.has_previous() else None,
            "results": [submission_json(request, s, full=False) for s in page],
        }
    )


def _create(request):
    if validators.content_length_missing(request):
        return error(411, "length_required", validators.LENGTH_REQUIRED_MESSAGE)
    if validators.content_length_too_large(request):
        return error(
            413,
            "too_large",
            f"The upload is larger than the {validators.describe_size(settings.UPLOAD_MAX_BYTES)} limit.",
        )
    data = request.POST.copy()
    if "url" in data:  # the API's name for the page's "link"
        data.setlist("link", data.pop("url"))
    form = SubmissionForm(data, request.FILES)
    if not form.is_valid():
        fields = {
            name: [{"code": e.code or "invalid", "message": " ".join(e.messages)} for e in errors]
            for name, errors in form.errors.as_data().items()
        }
        first = next(iter(fields.values()))[0]
        return error(400, first["code"], first["message"], fields=fields)
    try:
        submission = form.save(request.api_user)
    except media_files.StorageError as exc:
        # Nothing was kept; the same request may succeed later.
        response = error(exc.status, exc.code, exc.message)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    except RateLimited as exc:
        response = error(429, exc.code, exc.message)
        response["Retry-After"] = str(RATE_LIMIT_RETRY_SECONDS)
        return response
    response = JsonResponse(submission_json(request, submission, full=True), status=201)
    response["Location"] = response_location(request, submission)
    return response


def response_location(request, submission):
    return request.build_absolute_uri(
        reverse("api-submission-detail", kwargs={"public_id": submission.public_id})
    )


@api_view(["GET", "DELETE"])
def submission_detail(request, public_id):
    submission = get_submission_for_user(request.api_user, public_id, owner_only=request.method == "DELETE")
    if request.method == "DELETE":
        services.delete_submission(submission)
        return HttpResponse(status=204)
    return JsonResponse(submission_json(request, submission, full=True))


def server_error(request):
    """The project's handler500: an unexpected error in the API is answered in JSON too (as its
    documentation promises); pages get the usual 500.html."""
    if request.path.startswith("/api/"):
        message = "Something went wrong on our side. The error has been logged; try again later."
        return error(500, "server_error", message)
    return defaults.server_error(request)


@require_safe
def openapi(request):
    """The hand-written OpenAPI description (public: it documents the API, it holds no data)."""
    with open(OPENAPI_PATH, encoding="utf-8") as handle:
        document = json.load(handle)
    document["servers"] = [{"url": request.build_absolute_uri("/api/v1")}]
    return JsonResponse(document, json_dumps_params={"indent": 2})
