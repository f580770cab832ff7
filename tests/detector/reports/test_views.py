"""Report downloads (page and API), the public keys and the public verify page."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from detector.reports import signing
from tests.detector.reports.conftest import FETCHED_SHA256, PROVENANCE
from tests.helpers.web import make_submission, make_user, token_for

pytestmark = pytest.mark.django_db


def report_url(submission, kind="pdf", api=False):
    name = f"{'api-' if api else ''}submission-report-{kind}"
    return reverse(name, kwargs={"public_id": submission.public_id})


def test_the_owner_downloads_a_signed_pdf_and_json(client, owner, finished):
    client.force_login(owner)
    pdf = client.get(report_url(finished, "pdf"))
    assert pdf.status_code == 200
    assert pdf["Content-Type"] == "application/pdf"
    assert pdf["Content-Disposition"] == f'attachment; filename="report-{finished.public_id}.pdf"'
    assert signing.verify_bytes(pdf.content).outcome == signing.VALID
    data = client.get(report_url(finished, "json"))
    assert data.status_code == 200
    assert json.loads(data.content)["report"]["analysis"]["verdict"] == "FAKE"


def test_a_reviewer_may_download_anyones_report(client, finished):
    client.force_login(make_user("reviewer", reviewer=True))
    assert client.get(report_url(finished, "json")).status_code == 200


def test_another_user_gets_404_and_a_visitor_the_login_page(client, other, finished):
    assert client.get(report_url(finished)).status_code == 302
    client.force_login(other)
    assert client.get(report_url(finished)).status_code == 404


@pytest.mark.parametrize("status", ["queued", "running"])
def test_an_unfinished_analysis_is_refused_with_409_and_a_reason(client, owner, status):
    submission = make_submission(owner, status=status)
    client.force_login(owner)
    response = client.get(report_url(submission))
    assert response.status_code == 409
    assert f"still {status}" in response.content.decode()


def test_a_failed_analysis_downloads_a_report_of_its_failure(client, owner):
    submission = make_submission(owner, status="failed", error_message="No face was found.")
    client.force_login(owner)
    response = client.get(report_url(submission, "json"))
    assert response.status_code == 200
    assert json.loads(response.content)["report"]["failure"]["message"] == "No face was found."


def test_the_api_serves_reports_to_the_owner_only(client, owner, other, finished):
    response = client.get(
        report_url(finished, "json", api=True), HTTP_AUTHORIZATION=f"Token {token_for(owner)}"
    )
    assert response.status_code == 200
    assert signing.verify_bytes(response.content).outcome == signing.VALID
    response = client.get(
        report_url(finished, "pdf", api=True), HTTP_AUTHORIZATION=f"Token {token_for(other)}"
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_the_api_refuses_an_unfinished_analysis_with_409(client, owner):
    submission = make_submission(owner, status="running")
    response = client.get(
        report_url(submission, "pdf", api=True), HTTP_AUTHORIZATION=f"Token {token_for(owner)}"
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "not_finished"


def test_the_result_page_offers_the_report_only_when_finished(client, owner, finished):
    client.force_login(owner)
    page = client.get(reverse("submission-detail", kwargs={"public_id": finished.public_id})).content.decode()
    assert report_url(finished, "pdf") in page
    queued = make_submission(owner)
    page = client.get(reverse("submission-detail", kwargs={"public_id": queued.public_id})).content.decode()
    assert report_url(queued, "pdf") not in page


def test_the_public_keys_are_published_as_json(client):
    key = signing.current_key()
    response = client.get(reverse("report-public-keys"))
    assert response.status_code == 200
    assert [k["key_id"] for k in response.json()["keys"]] == [key.key_id]
    assert response.json()["keys"][0]["public_key"] == key.public_key


# --- the verify page -------------------------------------------------------------------------------


def verify(client, data, name="report.pdf"):
    return client.post(reverse("report-verify"), {"report": SimpleUploadedFile(name, data)})


@pytest.fixture
def report_json(finished):
    from detector.reports.build import build_report

    return build_report(finished).json_bytes


def outcome_of(response):
    text = response.content.decode()
    marker = 'data-outcome="'
    return text.split(marker, 1)[1].split('"', 1)[0] if marker in text else None


def test_the_verify_page_needs_no_account(client):
    response = client.get(reverse("report-verify"))
    assert response.status_code == 200
    assert "Verify a report" in response.content.decode()


def test_a_valid_report_is_called_valid_without_reading_the_database(
    client, report_json, django_assert_num_queries
):
    signing.current_key()  # created beforehand, as a running service has it
    with django_assert_num_queries(0):
        response = verify(client, report_json, "report.json")
    assert response.status_code == 200
    assert outcome_of(response) == signing.VALID
    assert "FAKE" in response.content.decode()


@pytest.mark.parametrize(
    ("change", "outcome"),
    [
        (
            lambda data: data.replace(b'"fake_probability": 0.913', b'"fake_probability": 0.912', 1),
            signing.ALTERED,
        ),
        (lambda data: data[:1000], signing.TRUNCATED),
        (lambda data: b"just some text", signing.NOT_A_REPORT),
        (lambda data: b"%PDF-1.4\n" + b"\x00" * 100, signing.TRUNCATED),
    ],
    ids=["edited", "truncated", "text", "broken-pdf"],
)
def test_each_kind_of_bad_file_gets_its_own_answer(client, report_json, change, outcome):
    response = verify(client, change(report_json))
    assert response.status_code == 200
    assert outcome_of(response) == outcome


def test_a_file_over_the_cap_is_refused(client, settings):
    settings.REPORT_VERIFY_MAX_BYTES = 1000
    response = verify(client, b"{" + b" " * 2000 + b"}")
    assert response.status_code == 413
    assert "limit" in response.content.decode()


def test_a_post_without_a_file_asks_for_one(client):
    response = client.post(reverse("report-verify"), {})
    assert response.status_code == 400
    assert "Choose a report file" in response.content.decode()


def test_the_admin_index_shows_the_public_keys(client):
    from django.contrib.auth import get_user_model

    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin)
    key = signing.current_key()
    page = client.get(reverse("admin:index")).content.decode()
    assert "Report signing keys" in page
    assert key.key_id in page and key.public_key in page


def test_a_downloaded_pdf_names_the_verify_page_and_the_file_type(client, owner, finished):
    import shutil
    import subprocess

    if not shutil.which("pdftotext"):
        pytest.skip("poppler-utils (pdftotext) is not installed")
    client.force_login(owner)
    pdf = client.get(report_url(finished, "pdf")).content
    text = subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True).stdout.decode()
    assert "http://testserver/reports/verify/" in " ".join(text.split())
    assert "h264 (MP4 file)" in text


def test_a_report_signed_by_another_key_is_named_on_the_page(client, report_json):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    document = json.loads(report_json)
    stranger = Ed25519PrivateKey.generate()
    raw = stranger.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    document["signature"].update(
        key_id=signing.key_id_of(raw),
        public_key=signing._b64(raw),
        value=signing._b64(stranger.sign(signing.canonical(document["report"]))),
    )
    response = verify(client, json.dumps(document).encode(), "report.json")
    assert outcome_of(response) == signing.UNKNOWN_KEY
    assert "Signed by another key" in response.content.decode()


def test_the_verify_page_shows_where_a_link_reports_video_was_fetched_from(client, fetched):
    from detector.reports.build import build_report

    response = verify(client, build_report(fetched).pdf_bytes())
    assert outcome_of(response) == signing.VALID
    html = response.content.decode()
    assert PROVENANCE["source_url"].replace("&", "&amp;") in html
    assert FETCHED_SHA256 in html
