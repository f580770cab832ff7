"""The report's content: facts from the rows, in the result page's words."""

import hashlib
import json

import pytest

from detector import presenters
from detector.models import Submission
from detector.reports import signing
from detector.reports.build import build_report
from detector.reports.content import ReportNotReady, build_content
from tests.detector.reports.conftest import FETCHED_SHA256, PROVENANCE
from tests.helpers.web import VIDEO_BYTES, make_submission

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("status", ["queued", "running"])
def test_it_refuses_a_submission_that_has_not_finished(owner, status):
    submission = make_submission(owner, status=status)
    with pytest.raises(ReportNotReady, match=f"still {status}"):
        build_content(submission)


def test_it_records_the_sha256_of_the_uploaded_bytes(finished):
    content = build_content(finished)
    assert content["video"]["sha256"] == hashlib.sha256(VIDEO_BYTES).hexdigest()
    assert content["video"]["original_name"] == "interview.mp4"
    assert content["video"]["size_bytes"] == len(VIDEO_BYTES)
    assert (content["video"]["width"], content["video"]["height"], content["video"]["codec"]) == (
        1280,
        720,
        "h264",
    )


def test_it_says_what_the_result_page_says(finished):
    content = build_content(finished)
    result = finished.current_result
    analysis = content["analysis"]
    assert analysis["verdict"] == "FAKE"
    assert analysis["fake_probability"] == pytest.approx(0.913)
    assert analysis["score_in_context"] == presenters.score_in_context(result)["sentence"]
    assert content["model"]["name"] == result.model_name
    assert content["model"]["sha256"] == result.model_sha256


def test_it_lists_every_analysis_and_the_human_review(finished):
    content = build_content(finished)
    assert [h["verdict"] for h in content["history"]] == ["REAL", "FAKE"]
    assert [h["current"] for h in content["history"]] == [False, True]
    assert content["review"]["decision"] == "confirmed_fake"
    assert content["review"]["note"] == "Lip sync drifts at 0:04."
    assert content["review"]["reviewer"] == "owner"


def test_every_face_crop_is_listed_with_its_time_score_and_image_hashes(finished):
    frames = build_content(finished)["evidence"]["frames"]
    assert len(frames) == 20
    first = frames[0]
    assert first["timestamp"] == 0.0 and 0 <= first["fake_probability"] <= 1
    stored = finished.current_result.frames.get(pk=first["id"])
    assert first["crop_sha256"] == hashlib.sha256(stored.crop.read()).hexdigest()
    assert len(first["overlay_sha256"]) == 64


def test_it_includes_the_score_interval_when_the_result_holds_one(finished):
    result = finished.current_result
    result.details = {**result.details, "score_interval": [0.84, 0.95], "interval_level": 0.9}
    result.save()
    assert build_content(finished)["analysis"]["interval"] == {"low": 0.84, "high": 0.95, "level": 0.9}


def test_it_has_no_interval_when_the_result_holds_none(finished):
    assert build_content(finished)["analysis"]["interval"] is None


def test_a_failed_submission_gets_a_report_of_its_failure(owner):
    submission = make_submission(owner, status=Submission.Status.FAILED, error_message="No face found.")
    content = build_content(submission)
    assert content["kind"] == "failure"
    assert content["failure"]["message"] == "No face found."
    assert "analysis" not in content
    assert content["video"]["sha256"] == hashlib.sha256(VIDEO_BYTES).hexdigest()


def test_a_deleted_video_has_no_hash_rather_than_a_wrong_one(finished):
    finished.video.delete(save=True)
    assert build_content(finished)["video"]["sha256"] is None


def test_the_model_is_described_as_its_page_describes_it(finished):
    detector = finished.current_result.detector
    detector.metrics = {
        "test_scores": {
            "reals": [0.1, 0.2, 0.95],
            "fakes": [0.4, 0.92, 0.97],
            "count": 6,
            "auc": 0.78,
            "threshold": 0.9,
            "split_counts": {"train": {"REAL": 45, "FAKE": 69}, "test": {"REAL": 3, "FAKE": 3}},
            "weaknesses": ["Heavy compression hides the traces."],
        }
    }
    detector.save()
    model = build_content(finished)["model"]
    card = presenters.model_card(detector)
    assert model["test_figures"]["real_videos"] == 3 and model["test_figures"]["fake_videos"] == 3
    assert model["test_figures"]["false_positives"] == card["test"]["false_positives"] == "1 of 3 (33%)"
    assert model["test_figures"]["false_positive_rate"] == pytest.approx(1 / 3, abs=1e-4)
    assert model["known_weaknesses"] == card["weaknesses"]
    assert "Heavy compression hides the traces." in model["known_weaknesses"]
    assert model["training_data"] == (
        "Trained on 114 videos (45 real, 69 fake); tested on 6 held-out videos (3 real, 3 fake)."
    )


def test_a_deleted_model_keeps_its_name_and_hash_only(finished):
    finished.current_result.detector.delete()
    finished.refresh_from_db()
    model = build_content(finished)["model"]
    assert model["sha256"] == "ab" * 32 and model["test_figures"] is None


def test_a_link_submission_carries_where_its_video_came_from(fetched):
    source = build_content(fetched)["source"]
    assert source["kind"] == "link"
    assert source["url"] == PROVENANCE["source_url"]
    assert source["final_url"] == PROVENANCE["source_final_url"]
    assert (source["site"], source["post_id"]) == ("example.org", "abc123")
    assert (source["title"], source["uploader"]) == ("Minister interview, 3 June", "Newsroom Desk")
    assert source["fetched_at"] == fetched.fetched_at.isoformat()
    assert source["fetched_sha256"] == FETCHED_SHA256


def test_an_uploaded_video_is_called_an_uploaded_file(finished):
    assert build_content(finished)["source"] == {"kind": "upload", "description": "uploaded file"}


def test_a_link_submission_report_verifies_and_an_edited_address_does_not(fetched):
    data = build_report(fetched).json_bytes
    assert signing.verify_bytes(data).outcome == signing.VALID
    document = json.loads(data)
    assert document["report"]["source"]["fetched_sha256"] == FETCHED_SHA256
    edited = data.replace(b"video.example.org/watch", b"video.example.net/watch", 1)
    assert edited != data
    assert signing.verify_bytes(edited).outcome == signing.ALTERED
