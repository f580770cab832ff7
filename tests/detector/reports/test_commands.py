"""manage.py report, verify_report, rotate_report_key and analyze --report."""

import json
from io import StringIO
from unittest import mock

import pytest
from django.core.management import CommandError, call_command

from detector import services
from detector.models import Submission
from detector.tasks import analyze_submission
from tests.detector._worker_support import face_video, install_tiny_model, make_user
from tests.helpers.web import make_submission

pytestmark = pytest.mark.django_db


def output_of(*args):
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_report_writes_a_pdf_and_a_json_that_verify(finished, tmp_path):
    text = output_of("report", str(finished.public_id), str(tmp_path / "out"))
    pdf = tmp_path / "out" / f"report-{finished.public_id}.pdf"
    data = tmp_path / "out" / f"report-{finished.public_id}.json"
    assert str(pdf) in text and str(data) in text
    for path in (pdf, data):
        assert output_of("verify_report", str(path)).startswith("VALID: ")


def test_report_refuses_an_unfinished_submission_and_a_bad_id(owner, tmp_path):
    queued = make_submission(owner)
    out = tmp_path / "out"
    with pytest.raises(CommandError, match="still queued"):
        call_command("report", str(queued.public_id), str(out))
    with pytest.raises(CommandError, match="not a submission UUID"):
        call_command("report", "../../etc", str(out))
    assert not out.exists()


def test_verify_report_names_an_altered_report_and_fails(finished, tmp_path):
    call_command("report", str(finished.public_id), str(tmp_path), stdout=StringIO())
    path = tmp_path / f"report-{finished.public_id}.json"
    document = json.loads(path.read_text())
    document["report"]["analysis"]["verdict"] = "REAL"
    path.write_text(json.dumps(document))
    with pytest.raises(CommandError, match="^ALTERED"):
        call_command("verify_report", str(path))


def test_verify_report_explains_a_missing_file(tmp_path):
    with pytest.raises(CommandError, match="cannot read"):
        call_command("verify_report", str(tmp_path / "nothing.pdf"))


def test_rotating_the_key_keeps_an_old_report_valid(finished, tmp_path):
    call_command("report", str(finished.public_id), str(tmp_path), stdout=StringIO())
    assert "retired" in output_of("rotate_report_key")
    assert output_of("verify_report", str(tmp_path / f"report-{finished.public_id}.pdf")).startswith("VALID")


@pytest.mark.usefixtures("in_process_worker")
def test_analyze_with_report_writes_each_finished_analysis_report(tmp_path):
    install_tiny_model(tmp_path)
    make_user("batch")
    face_video(tmp_path, "clip.mp4")

    def run_now(args, **kwargs):
        analyze_submission.apply(args=args)

    with (
        mock.patch.object(analyze_submission, "apply_async", side_effect=run_now),
        mock.patch("detector.services.dispatch_on_commit", side_effect=services.dispatch),
    ):
        text = output_of(
            "analyze",
            str(tmp_path / "clip.mp4"),
            "--user",
            "batch",
            "--frames",
            "10",
            "--report",
            str(tmp_path / "r"),
        )
    submission = Submission.objects.get()
    assert submission.status == Submission.Status.DONE
    pdf = tmp_path / "r" / f"report-{submission.public_id}.pdf"
    assert f"report {pdf}" in text
    answer = output_of("verify_report", str(pdf))
    assert answer.startswith("VALID") and submission.current_result.verdict in answer


def test_analyze_refuses_a_report_folder_that_is_a_file(tmp_path):
    make_user("batch")
    (tmp_path / "taken").write_text("x")
    with pytest.raises(CommandError, match="not a folder"):
        call_command("analyze", str(tmp_path), "--user", "batch", "--report", str(tmp_path / "taken"))


def test_report_key_creates_the_key_once_and_then_shows_the_same_one(settings):
    folder = settings.REPORT_SIGNING_KEY_DIR
    assert not (folder / "signing_key.pem").exists()
    first = output_of("report_key")
    assert (folder / "signing_key.pem").stat().st_mode & 0o777 == 0o600
    assert output_of("report_key") == first
    key_id = first.split()[3]
    listed = json.loads((folder / "public_keys.json").read_text())["keys"]
    assert [k["key_id"] for k in listed] == [key_id]
