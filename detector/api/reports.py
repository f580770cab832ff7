"""JSON API v1: a submission's signed report, as JSON or PDF (token auth, owner or staff)."""

from django.urls import reverse

from ..access import get_submission_for_user
from ..reports.build import build_report
from ..reports.content import ReportNotReady
from ..views.reports import report_response
from .views import api_view, error


@api_view(["GET"])
def submission_report(request, public_id, kind):
    submission = get_submission_for_user(request.api_user, public_id)
    try:
        report = build_report(submission, verify_url=request.build_absolute_uri(reverse("report-verify")))
    except ReportNotReady as exc:
        return error(409, "not_finished", str(exc), submission_status=exc.status)
    return report_response(report, kind)
