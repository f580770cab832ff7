"""The verdict as people read it: how the score is made, its likely range, why UNCERTAIN, the
Grad-CAM reading guide, and the same words in the list."""

import pytest
from django.test import Client
from django.urls import reverse

from detector.models import FrameImage
from ml_core.inference.score import SCORE_DEFINITION
from tests.helpers.web import make_result, make_submission

pytestmark = pytest.mark.django_db


def page(user, submission):
    client = Client()
    client.force_login(user)
    return client.get(
        reverse("submission-detail", kwargs={"public_id": submission.public_id})
    ).content.decode()


def finished(owner, *, verdict="FAKE", p_fake=0.91, interval=None, band=0.05, threshold=0.5, **kwargs):
    submission = make_submission(owner)
    result = make_result(submission, verdict=verdict, fake_probability=p_fake, **kwargs)
    result.details = {**result.details, "threshold": threshold, "uncertain_band": band}
    if interval is not None:
        result.details.update(score_interval=interval, interval_level=0.9)
        result.identities[0]["interval"] = interval
    result.save()
    return submission, result


def test_the_page_says_how_the_score_is_made(owner):
    submission, _ = finished(owner)
    html = page(owner, submission)
    assert SCORE_DEFINITION.replace("'", "&#x27;") in html


def test_the_score_comes_with_its_likely_range(owner):
    submission, _ = finished(owner, p_fake=0.62, verdict="FAKE", interval=[0.512, 0.704])
    html = page(owner, submission)
    assert 'data-testid="score-range">likely range 51–70%<' in html
    assert "holds 90% of the scores from the same faces redrawn at random" in html


def test_a_range_across_the_threshold_is_explained_as_the_reason_for_uncertain(owner):
    submission, _ = finished(owner, verdict="UNCERTAIN", p_fake=0.8, interval=[0.62, 0.9], threshold=0.7)
    html = page(owner, submission)
    assert "likely range (62–90%) reaches both sides of the threshold (70%)" in html
    assert "within" not in html.split('data-testid="uncertainty">')[1].split("</p>")[0]


def test_a_score_inside_the_band_is_explained_as_too_close(owner):
    submission, _ = finished(owner, verdict="UNCERTAIN", p_fake=0.72, interval=[0.71, 0.73], threshold=0.7)
    html = page(owner, submission)
    assert "the score is within 5 points of the decision threshold (70%)" in html
    assert "reaches both sides" not in html


def test_an_older_result_without_a_range_still_renders(owner):
    submission, result = finished(owner, verdict="UNCERTAIN", p_fake=0.52)
    result.details = {"threshold": 0.5}  # before bands and ranges were recorded
    result.save()
    html = page(owner, submission)
    assert 'data-testid="verdict">UNCERTAIN<' in html
    assert 'data-testid="score-range"' not in html
    assert "too close to the decision threshold (50%) to call either way" in html


def test_the_chart_draws_the_score_and_its_range(owner):
    submission, _ = finished(owner, p_fake=0.62, interval=[0.5, 0.7])
    html = page(owner, submission)
    chart = html.split('data-testid="frame-chart">')[1].split("</svg>")[0]
    assert 'class="score-line"' in chart and "<title>score: 0.62</title>" in chart
    assert 'class="score-range"' in chart and "likely range of the score: 0.50–0.70" in chart
    assert "The solid purple line is the video's score (0.62)" in html


def test_every_verdict_links_to_the_model_card(owner):
    submission, _ = finished(owner, verdict="REAL", p_fake=0.1)
    html = page(owner, submission)
    assert f'href="{reverse("model-card")}" data-testid="model-link"' in html


def test_the_grad_cam_guide_and_a_note_on_crops_heated_off_the_face(owner):
    submission, result = finished(owner)
    result.identities[0]["heat_in_face"] = [0.9, 0.2, 0.3]  # only the second: under a quarter on the face
    result.save()
    html = page(owner, submission)
    assert "Reading the heat map (Grad-CAM)" in html
    assert html.count('data-testid="heat-outside"') == 1 and "(1 here)" in html
    second = FrameImage.objects.get(result=result, identity=0, position=1)
    assert f'data-overlay-src="/submissions/{submission.public_id}/frames/{second.pk}/overlay/"' in html


def test_no_guide_without_overlays(owner):
    submission, _ = finished(owner, overlays=False)
    assert "Reading the heat map" not in page(owner, submission)


def test_the_list_gives_the_threshold_and_the_definition(owner):
    finished(owner, verdict="REAL", p_fake=0.55, threshold=0.695)
    client = Client()
    client.force_login(owner)
    html = client.get(reverse("submission-list")).content.decode()
    assert "55% fake · threshold 70%" in html
    assert SCORE_DEFINITION.replace("'", "&#x27;") in html
    assert f'href="{reverse("model-card")}"' in html


def test_the_upload_form_says_what_more_frames_buy_as_measured(owner):
    client = Client()
    client.force_login(owner)
    html = client.get(reverse("submission-create")).content.decode()
    assert "40 frames instead of 20 changed the verdict of 1 clip in 29" in html
    assert "a steadier verdict" not in html  # the old, unmeasured promise


def test_with_several_people_the_page_says_whose_score_the_video_took(owner):
    submission, result = finished(owner, identities=(0, 1))
    result.details["decisive_identity"] = 1
    result.save()
    assert "The video's score (91.0%) comes from person 2" in page(owner, submission)
    result.details["decisive_identity"] = 0
    result.save()
    assert 'data-testid="decisive-person"' not in page(owner, submission)
