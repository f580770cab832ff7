"""Reports: download a submission's signed report (owner and staff), the public keys, and the
public "verify a report" page (no account; it reads the uploaded file and the public keys only)."""

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import content_disposition_header
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_safe

from .. import validators
from ..access import get_submission_for_user
from ..reports import signing
from ..reports.build import build_report
from ..reports.content import ReportNotReady

CONTENT_TYPES = {"pdf": "application/pdf", "json": "application/json"}


def report_response(report, kind):
    """The report file as a download (PDF or JSON)."""
    data = report.pdf_bytes() if kind == "pdf" else report.json_bytes
    response = HttpResponse(data, content_type=CONTENT_TYPES[kind])
    response["Content-Disposition"] = content_disposition_header(True, report.file_name(kind))
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


@never_cache
@login_required
@require_safe
def submission_report(request, public_id, kind):
    submission = get_submission_for_user(request.user, public_id)
    try:
        report = build_report(submission, verify_url=request.build_absolute_uri(reverse("report-verify")))
    except ReportNotReady as exc:
        context = {"submission": submission, "message": str(exc)}
        return render(request, "detector/report_not_ready.html", context, status=409)
    return report_response(report, kind)


@require_safe
def public_keys(request):
    """Every key this service signed reports with, old ones with the dates they were in use."""
    return JsonResponse(
        {
            "algorithm": signing.ALGORITHM,
            "signed_form": signing.CANONICAL_FORM,
            "public_key_encoding": "base64 of the 32 raw bytes",
            "keys": signing.published_keys(),
        },
        json_dumps_params={"indent": 2},
    )


class VerifyForm(forms.Form):
    report = forms.FileField(label="Report file (PDF or JSON)")


def _too_large():
    return f"That file is larger than the {validators.describe_size(settings.REPORT_VERIFY_MAX_BYTES)} limit."


@require_http_methods(["GET", "POST"])
def verify(request):
    """Check an uploaded report. Nothing is stored: the file is read in memory and forgotten."""
    answer, error, status = None, "", 200
    form = VerifyForm()
    if request.method == "POST":
        declared = request.META.get("CONTENT_LENGTH") or ""
        # Refused from the declared length alone, before the body is read.
        if declared.isdigit() and int(declared) > settings.REPORT_VERIFY_MAX_BYTES + 64 * 1024:
            error, status = _too_large(), 413
        else:
            form = VerifyForm(request.POST, request.FILES)
            if not form.is_valid():
                error, status = "Choose a report file to check.", 400
            elif form.cleaned_data["report"].size > settings.REPORT_VERIFY_MAX_BYTES:
                error, status = _too_large(), 413
            else:
                upload = form.cleaned_data["report"]
                answer = signing.verify_bytes(upload.read(settings.REPORT_VERIFY_MAX_BYTES + 1))
    context = {
        "form": form,
        "answer": answer,
        "error": error,
        "max_size_text": validators.describe_size(settings.REPORT_VERIFY_MAX_BYTES),
        "summary": _summary(answer.report) if answer and answer.report else None,
    }
    return render(request, "detector/report_verify.html", context, status=status)


def _summary(report):
    """What the signed report says, so the reader can compare it with the copy they hold."""
    if not isinstance(report, dict):
        return None
    analysis = report.get("analysis") if isinstance(report.get("analysis"), dict) else {}
    video = report.get("video") if isinstance(report.get("video"), dict) else {}
    model = report.get("model") if isinstance(report.get("model"), dict) else {}
    # A link's provenance (reports signed before links existed have no source).
    source = report.get("source") if isinstance(report.get("source"), dict) else {}
    score = analysis.get("fake_probability")
    return {
        "verdict": analysis.get("verdict") or ("analysis failed" if report.get("failure") else None),
        "score": f"{score * 100:.1f}%" if isinstance(score, int | float) else None,
        "video_name": video.get("original_name"),
        "video_sha256": video.get("sha256"),
        "source_url": source.get("url"),
        "fetched_sha256": source.get("fetched_sha256"),
        "model_name": model.get("name"),
        "model_sha256": model.get("sha256"),
        "generated_at": signing.when(report.get("generated_at")) if report.get("generated_at") else None,
        "submission": (report.get("submission") or {}).get("id")
        if isinstance(report.get("submission"), dict)
        else None,
    }
