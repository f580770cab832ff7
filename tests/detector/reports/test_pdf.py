"""The PDF: rendered to PNG pages by poppler, its text extracted and checked, its JSON inside."""

import hashlib
import json
import shutil
import subprocess

import pytest

from detector.models import Submission
from detector.reports import signing
from detector.reports.build import build_report
from detector.reports.pdf import embedded_document
from tests.detector.reports.conftest import FETCHED_SHA256, PROVENANCE
from tests.helpers.web import VIDEO_BYTES, make_submission

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(not shutil.which("pdftoppm"), reason="poppler-utils (pdftoppm) is not installed"),
]


def run(*args):
    return subprocess.run(args, check=True, capture_output=True, timeout=60)


@pytest.fixture
def report_pdf(finished, tmp_path):
    result = finished.current_result
    result.details = {**result.details, "score_interval": [0.84, 0.95], "interval_level": 0.9}
    result.save()
    path = tmp_path / "report.pdf"
    path.write_bytes(build_report(finished).pdf_bytes())
    return path


def test_the_pdf_renders_and_its_first_page_names_verdict_hashes_and_model(finished, report_pdf, tmp_path):
    run("pdftoppm", "-r", "50", "-png", str(report_pdf), str(tmp_path / "page"))
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 2
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in pages)
    first = run("pdftotext", "-f", "1", "-l", "1", "-layout", str(report_pdf), "-").stdout.decode()
    result = finished.current_result
    assert "FAKE" in first
    assert "91.3% probability of being fake (likely 84% – 95%, 90% range)" in first
    assert hashlib.sha256(VIDEO_BYTES).hexdigest() in first
    assert result.model_sha256 in first
    assert result.model_name in first
    everything = run("pdftotext", "-layout", str(report_pdf), "-").stdout.decode()
    assert "Face crops" in everything and "Most suspicious frames" in everything
    assert "Lip sync drifts at 0:04." in everything


def test_the_pdf_embeds_its_fonts(report_pdf):
    lines = run("pdffonts", str(report_pdf)).stdout.decode().splitlines()[2:]
    assert lines, "no fonts listed"
    for line in lines:
        assert line.split()[-5] == "yes", f"font not embedded: {line}"


def test_the_pdf_carries_the_signed_json_and_verifies(report_pdf):
    assert "report.json" in run("pdfdetach", "-list", str(report_pdf)).stdout.decode()
    data = report_pdf.read_bytes()
    assert json.loads(embedded_document(data))["format"] == signing.FORMAT
    assert signing.verify_bytes(data).outcome == signing.VALID


def test_an_edited_score_inside_the_pdf_is_detected(report_pdf):
    data = report_pdf.read_bytes()
    edited = data.replace(b'"fake_probability": 0.913', b'"fake_probability": 0.013', 1)
    assert edited != data
    assert signing.verify_bytes(edited).outcome == signing.ALTERED


def test_a_truncated_pdf_is_called_truncated(report_pdf):
    data = report_pdf.read_bytes()
    assert signing.verify_bytes(data[: len(data) - 4000]).outcome == signing.TRUNCATED


def test_a_pdf_that_is_not_a_report_is_called_so(tmp_path):
    from reportlab.pdfgen.canvas import Canvas

    path = tmp_path / "other.pdf"
    canvas = Canvas(str(path))
    canvas.drawString(100, 700, "An invoice")
    canvas.save()
    assert signing.verify_bytes(path.read_bytes()).outcome == signing.NOT_A_REPORT


def test_a_failed_analysis_gets_a_pdf_that_says_so(owner):
    submission = make_submission(owner, status=Submission.Status.FAILED, error_message="No face was found.")
    pdf = build_report(submission).pdf_bytes()
    text = subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True).stdout.decode()
    assert "ANALYSIS FAILED" in text and "No face was found." in text
    assert signing.verify_bytes(pdf).outcome == signing.VALID


def test_the_same_report_gives_the_same_pdf_bytes(finished):
    report = build_report(finished)
    assert report.pdf_bytes() == report.pdf_bytes()


def first_page_text(pdf):
    return subprocess.run(
        ["pdftotext", "-f", "1", "-l", "1", "-layout", "-", "-"], input=pdf, capture_output=True, check=True
    ).stdout.decode()


def test_a_link_submission_pdf_names_the_link_and_the_fetched_sha256_on_its_first_page(fetched):
    pdf = build_report(fetched).pdf_bytes()
    first = first_page_text(pdf)
    assert "Where it came from" in first
    for value in ("source_url", "source_final_url", "source_title", "source_uploader", "source_post_id"):
        assert PROVENANCE[value] in first
    assert FETCHED_SHA256 in first
    assert "fetched from a link" in first
    assert signing.verify_bytes(pdf).outcome == signing.VALID


def test_an_uploaded_video_pdf_says_so_and_has_no_link_section(finished):
    first = first_page_text(build_report(finished).pdf_bytes())
    assert "uploaded file" in first
    assert "Where it came from" not in first


def test_a_link_too_long_for_one_line_is_wrapped_not_cut(fetched):
    # A link may be 2,000 characters without a space: it must wrap inside the page, whole.
    fetched.source_url = "https://video.example.org/watch?v=" + "x" * 400 + "END"
    fetched.save()
    text = subprocess.run(
        ["pdftotext", "-", "-"], input=build_report(fetched).pdf_bytes(), capture_output=True, check=True
    ).stdout.decode()
    assert "".join(text.split()).count("x" * 400 + "END") == 1
