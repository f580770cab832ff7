"""The submission review panel in the Django admin: access, review fields, filters, actions, export."""

import csv
import io
import uuid
from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from detector.models import DetectorModel, FrameImage, Result, Submission, User

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:detector_submission_changelist"


def make_user(username, *, staff=False, superuser=False, group=None):
    user = User.objects.create_user(username, f"{username}@example.com", "pw", is_staff=staff)
    if superuser:
        user.is_superuser = True
        user.save()
    if group:
        user.groups.add(Group.objects.get(name=group))
    return user


def make_detector(name="model-a", sha="a"):
    digest = (sha * 64)[:64]
    return DetectorModel.objects.create(name=name, sha256=digest, checkpoint=f"detectors/{digest}.pt")


def make_submission(owner, *, verdict=None, probability=0.5, decision="", detector=None, name="clip.mp4"):
    submission = Submission.objects.create(owner=owner, original_name=name, status=Submission.Status.QUEUED)
    if verdict:
        detector = detector or DetectorModel.objects.first() or make_detector()
        result = Result.objects.create(
            submission=submission,
            verdict=verdict,
            fake_probability=probability,
            frame_probabilities=[0.1, 0.9, probability],
            frame_timestamps=[0.0, 0.5, 1.0],
            identities=[
                {"id": 0, "label": verdict, "fake_probability": probability, "frame_probabilities": [0.1]}
            ],
            detector=detector,
            model_name=detector.name,
            model_sha256=detector.sha256,
            device="cpu",
            timings={"decode": 0.25, "total": 1.5},
        )
        submission.current_result = result
        submission.status = Submission.Status.DONE
    submission.review_decision = decision
    submission.save()
    return submission


@pytest.fixture
def owner():
    return make_user("alice")


@pytest.fixture
def reviewer(client):
    user = make_user("rita", staff=True, group="reviewer")
    client.force_login(user)
    return user


def listed(response):
    return set(response.context["cl"].result_list)


def test_the_reviewer_group_has_view_and_review_permissions():
    codenames = set(Group.objects.get(name="reviewer").permissions.values_list("codename", flat=True))
    assert {"view_submission", "review_submission", "view_result", "view_detectormodel"} <= codenames
    assert "change_submission" not in codenames
    assert "delete_submission" not in codenames


def test_anonymous_and_non_staff_users_are_sent_to_the_admin_login(client, owner):
    submission = make_submission(owner, verdict="FAKE")
    urls = [reverse(CHANGELIST), reverse("admin:detector_submission_change", args=[submission.pk])]
    for url in urls:
        assert reverse("admin:login") in client.get(url)["Location"]
    client.force_login(owner)
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302
        assert reverse("admin:login") in response["Location"]


def test_staff_without_permissions_cannot_open_submissions(client, owner):
    submission = make_submission(owner, verdict="FAKE")
    client.force_login(make_user("sam", staff=True))
    assert client.get(reverse(CHANGELIST)).status_code == 403
    assert client.get(reverse("admin:detector_submission_change", args=[submission.pk])).status_code == 403


def test_a_reviewer_sees_the_list_with_verdict_model_and_review_columns(client, reviewer, owner):
    detector = make_detector("resnext-20", sha="c")
    make_submission(owner, verdict="FAKE", probability=0.912, detector=detector, name="party.mp4")
    response = client.get(reverse(CHANGELIST))
    assert response.status_code == 200
    html = response.content.decode()
    assert "party.mp4" in html
    assert "alice" in html
    assert "0.912" in html
    assert f"resnext-20 ({'c' * 12})" in html


def test_the_list_uses_the_same_number_of_queries_for_5_and_50_rows(client, reviewer, owner):
    def count_queries():
        with CaptureQueriesContext(connection) as queries:
            response = client.get(reverse(CHANGELIST))
        assert response.status_code == 200
        return len(queries), len(response.context["cl"].result_list)

    for i in range(5):
        make_submission(owner, verdict="REAL", decision="confirmed_real", name=f"a{i}.mp4")
    few, shown_few = count_queries()
    for i in range(45):
        other = make_user(f"user{i}")
        make_submission(other, verdict="FAKE", detector=make_detector(f"m{i}", sha=f"{i:02d}"))
    many, shown_many = count_queries()
    assert (shown_few, shown_many) == (5, 50)
    assert many == few


def test_a_staff_user_with_only_view_permission_sees_but_cannot_change_a_review(client, owner):
    submission = make_submission(owner, verdict="FAKE")
    viewer = make_user("vic", staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_submission"))
    client.force_login(viewer)
    url = reverse("admin:detector_submission_change", args=[submission.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert 'name="review_decision"' not in page.content.decode()
    response = client.post(url, {"review_decision": "confirmed_real", "review_notes": "sneaky"})
    assert response.status_code == 403
    submission.refresh_from_db()
    assert submission.review_decision == ""
    assert submission.reviewed_by is None


def test_saving_a_review_records_the_reviewer_and_the_time_from_the_request(client, reviewer, owner):
    submission = make_submission(owner, verdict="REAL")
    Result.objects.create(submission=submission, verdict="FAKE", fake_probability=0.7, model_sha256="f" * 64)
    url = reverse("admin:detector_submission_change", args=[submission.pk])
    page = client.get(url)
    html = page.content.decode()
    assert 'name="review_decision"' in html
    assert 'name="reviewed_by"' not in html  # set from the request, never typed
    response = client.post(
        url,
        {
            "review_decision": "confirmed_fake",
            "review_notes": "lip sync drifts at 0:04",
            "reviewed_by": owner.pk,  # ignored: not a form field
            "status": "failed",  # ignored: machine state is read-only here
            **inline_form_data(page),
        },
    )
    assert inline_form_data(page)["results-TOTAL_FORMS"] == 2
    assert response.status_code == 302, response.context["adminform"].form.errors
    submission.refresh_from_db()
    assert submission.review_decision == "confirmed_fake"
    assert submission.review_notes == "lip sync drifts at 0:04"
    assert submission.reviewed_by == reviewer
    assert submission.reviewed_at is not None
    assert submission.status == "done"


def test_saving_without_touching_the_review_does_not_mark_it_reviewed(client, reviewer, owner):
    submission = make_submission(owner, verdict="REAL")
    url = reverse("admin:detector_submission_change", args=[submission.pk])
    data = inline_form_data(client.get(url))
    response = client.post(url, {"review_decision": "", "review_notes": "", **data})
    assert response.status_code == 302
    submission.refresh_from_db()
    assert submission.reviewed_at is None


def inline_form_data(page):
    """The history inline's hidden form data, as a browser would post it back."""
    data = {}
    for inline in page.context["inline_admin_formsets"]:
        formset = inline.formset
        for name in formset.management_form.fields:
            data[formset.management_form.add_prefix(name)] = formset.management_form[name].value()
        for form in formset.forms:
            for name in form.fields:
                value = form[name].value()
                if value is not None:
                    data[form.add_prefix(name)] = value
    return data


def test_the_detail_page_draws_the_result_pages_chart_one_point_per_frame(client, reviewer, owner):
    submission = make_submission(owner, verdict="FAKE", probability=0.8)
    submission.current_result.details = {"threshold": 0.7}
    submission.current_result.save()
    html = client.get(reverse("admin:detector_submission_change", args=[submission.pk])).content.decode()
    chart = html[html.index('<svg class="frame-chart"') :]
    chart = chart[: chart.index("</svg>")]
    assert chart.count("<circle") == 3  # frame probabilities 0.1, 0.9, 0.8
    assert chart.count('fill="#dc3545"><title>') == 2  # 0.9 and 0.8 are above the 0.7 threshold
    assert ">threshold</tspan>" in chart and ">0.70</tspan>" in chart
    assert "frame 2 at 0.50 s: 0.900" in chart


def test_the_detail_page_says_how_the_score_is_made_and_gives_its_likely_range(client, reviewer, owner):
    from ml_core.inference.score import SCORE_DEFINITION

    submission = make_submission(owner, verdict="FAKE", probability=0.8)
    submission.current_result.details = {
        "threshold": 0.7,
        "score_interval": [0.7512, 0.8834],
        "main_identity": 0,
    }
    submission.current_result.save()
    html = client.get(reverse("admin:detector_submission_change", args=[submission.pk])).content.decode()
    assert SCORE_DEFINITION in html  # the fieldset's description (the admin renders it as is)
    assert "0.751–0.883" in html
    assert '<line class="score-line"' in html  # the main person's score on the chart


def test_the_results_history_rounds_each_runs_probability_as_the_list_does(client, reviewer, owner):
    submission = make_submission(owner, verdict="UNCERTAIN", probability=0.9980670809745789)
    html = client.get(reverse("admin:detector_submission_change", args=[submission.pk])).content.decode()
    history = html[html.index('id="results-group"') :]
    assert "0.998" in history
    assert "0.99806" not in history and "1.00" not in history


def test_the_detail_page_shows_the_machine_output_images_video_link_and_history(client, reviewer, owner):
    submission = make_submission(owner, verdict="FAKE", probability=0.8)
    submission.video.name = f"submissions/{submission.public_id}/video.mp4"
    submission.save()
    older = Result.objects.create(
        submission=submission, verdict="REAL", fake_probability=0.2, model_name="old", model_sha256="d" * 64
    )
    frame = FrameImage.objects.create(
        result=submission.current_result,
        position=0,
        frame_index=12,
        timestamp=0.5,
        crop="x/crop.png",
        overlay="x/overlay.png",
        fake_probability=0.9,
    )
    html = client.get(reverse("admin:detector_submission_change", args=[submission.pk])).content.decode()
    assert "<svg" in html  # per-frame chart
    assert "0.900" in html  # per-frame table
    assert "decode" in html  # timings
    assert "Results history" in html
    assert f"old ({'d' * 12})" in html  # the earlier result is still listed
    assert older.verdict in html
    frame_urls = [
        reverse(
            "submission-frame-image",
            kwargs={"public_id": submission.public_id, "frame_id": frame.pk, "kind": k},
        )
        for k in ("crop", "overlay")
    ]
    for url in frame_urls:
        assert f'src="{url}"' in html
    assert reverse("submission-video", kwargs={"public_id": submission.public_id}) in html


def test_search_finds_by_owner_original_name_and_public_id(client, reviewer, owner):
    bob = make_user("bobby")
    by_name = make_submission(owner, name="wedding-speech.mp4")
    by_owner = make_submission(bob, name="x.mp4")
    other = make_submission(owner, name="y.mp4")
    url = reverse(CHANGELIST)
    assert listed(client.get(url, {"q": "wedding"})) == {by_name}
    assert listed(client.get(url, {"q": "bobby"})) == {by_owner}
    assert listed(client.get(url, {"q": str(other.public_id)})) == {other}
    assert listed(client.get(url, {"q": str(uuid.uuid4())})) == set()


def test_the_agreement_filter_separates_disagreements(client, reviewer, owner):
    agrees_fake = make_submission(owner, verdict="FAKE", decision="confirmed_fake")
    agrees_real = make_submission(owner, verdict="REAL", decision="confirmed_real")
    missed_fake = make_submission(owner, verdict="REAL", decision="confirmed_fake")
    false_alarm = make_submission(owner, verdict="FAKE", decision="confirmed_real")
    uncertain = make_submission(owner, verdict="UNCERTAIN", decision="confirmed_fake")
    inconclusive = make_submission(owner, verdict="FAKE", decision="inconclusive")
    make_submission(owner, verdict="FAKE")  # not reviewed: in none of them
    url = reverse(CHANGELIST)
    assert listed(client.get(url, {"agreement": "agrees"})) == {agrees_fake, agrees_real}
    assert listed(client.get(url, {"agreement": "real_but_fake"})) == {missed_fake}
    assert listed(client.get(url, {"agreement": "fake_but_real"})) == {false_alarm}
    assert listed(client.get(url, {"agreement": "disagrees"})) == {missed_fake, false_alarm}
    assert listed(client.get(url, {"agreement": "uncertain"})) == {uncertain}
    assert listed(client.get(url, {"agreement": "inconclusive"})) == {inconclusive}
    assert "Machine said REAL, reviewer confirmed fake" in client.get(url).content.decode()


def test_the_other_filters_work(client, reviewer, owner):
    model_a = make_detector("model-a", sha="a")
    model_b = make_detector("model-b", sha="b")
    fake = make_submission(owner, verdict="FAKE", decision="confirmed_fake", detector=model_a)
    real_b = make_submission(owner, verdict="REAL", detector=model_b)
    queued = make_submission(owner)
    Submission.objects.filter(pk=fake.pk).update(reviewed_at="2026-01-01T00:00:00Z")
    url = reverse(CHANGELIST)
    assert listed(client.get(url, {"status__exact": "queued"})) == {queued}
    assert listed(client.get(url, {"current_result__verdict__exact": "REAL"})) == {real_b}
    assert listed(client.get(url, {"reviewed": "yes"})) == {fake}
    assert listed(client.get(url, {"reviewed": "no"})) == {real_b, queued}
    assert listed(client.get(url, {"review_decision__exact": "confirmed_fake"})) == {fake}
    assert listed(client.get(url, {"current_result__detector__id__exact": model_b.pk})) == {real_b}
    assert len(listed(client.get(url, {"created_at__gte": "2000-01-01 00:00:00+00:00"}))) == 3


def post_action(client, action, submissions, **extra):
    return client.post(
        reverse(CHANGELIST), {"action": action, "_selected_action": [s.pk for s in submissions], **extra}
    )


def test_mark_as_reviewed_stamps_the_reviewer_but_keeps_earlier_reviews(client, reviewer, owner):
    earlier = make_user("ed", staff=True)
    already = make_submission(owner, verdict="FAKE", decision="confirmed_fake")
    Submission.objects.filter(pk=already.pk).update(reviewed_by=earlier, reviewed_at="2026-01-01T00:00:00Z")
    fresh = make_submission(owner, verdict="REAL")
    assert post_action(client, "mark_reviewed", [already, fresh]).status_code == 302
    already.refresh_from_db()
    fresh.refresh_from_db()
    assert (fresh.reviewed_by, fresh.reviewed_at is not None) == (reviewer, True)
    assert already.reviewed_by == earlier


def test_the_csv_export_has_the_columns_and_neutralises_formulas(client, reviewer, owner):
    detector = make_detector("model-x", sha="e")
    submission = make_submission(
        owner,
        verdict="FAKE",
        probability=0.75,
        decision="confirmed_fake",
        detector=detector,
        name="=HYPERLINK(1)",
    )
    Submission.objects.filter(pk=submission.pk).update(
        review_notes="+cmd|' /C calc'!A0", reviewed_by=reviewer
    )
    plain = make_submission(owner, verdict="REAL", probability=0.1, name="-plain.mp4")
    response = post_action(client, "export_csv", [submission, plain])
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 2
    row = next(r for r in rows if r["public_id"] == str(submission.public_id))
    assert row["owner"] == "alice"
    assert row["original_name"] == "'=HYPERLINK(1)"
    assert row["review_notes"] == "'+cmd|' /C calc'!A0"
    assert row["verdict"] == "FAKE"
    assert float(row["fake_probability"]) == pytest.approx(0.75)
    assert row["model_sha256"] == "e" * 64
    assert row["review_decision"] == "confirmed_fake"
    assert row["reviewed_by"] == "rita"
    assert row["created_at"].startswith(str(submission.created_at.year))
    other = next(r for r in rows if r["public_id"] == str(plain.public_id))
    assert other["original_name"] == "'-plain.mp4"


def test_a_viewer_can_export_but_not_rerun_or_mark_reviewed(client, owner):
    submission = make_submission(owner, verdict="FAKE")
    viewer = make_user("vic", staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_submission"))
    client.force_login(viewer)
    actions = [
        choice[0]
        for choice in client.get(reverse(CHANGELIST)).context["action_form"].fields["action"].choices
    ]
    assert "export_csv" in actions
    assert "rerun_selected" not in actions
    assert "mark_reviewed" not in actions
    post_action(client, "mark_reviewed", [submission])
    submission.refresh_from_db()
    assert submission.reviewed_at is None


def test_rerun_asks_which_model_then_queues_with_it_and_keeps_the_old_result(client, reviewer, owner):
    model_a = make_detector("model-a", sha="a")
    model_b = make_detector("model-b", sha="b")
    DetectorModel.objects.filter(pk=model_a.pk).update(is_active=True)
    done = make_submission(owner, verdict="REAL", detector=model_a)
    done.video.name = f"submissions/{done.public_id}/video.mp4"
    done.save()
    old_result = done.current_result
    running = make_submission(owner)
    Submission.objects.filter(pk=running.pk).update(status="running")

    page = post_action(client, "rerun_selected", [done, running])
    assert page.status_code == 200
    html = page.content.decode()
    assert "model-b" in html and "The active model" in html

    response = post_action(client, "rerun_selected", [done, running], apply="1", detector=model_b.pk)
    assert response.status_code == 302
    done.refresh_from_db()
    assert done.status == "queued"
    assert done.requested_detector == model_b
    assert Result.objects.filter(pk=old_result.pk, submission=done).exists()
    running.refresh_from_db()
    assert running.status == "running"
    assert running.requested_detector is None


def test_deleting_in_the_admin_removes_the_video_file_too(client, owner, django_capture_on_commit_callbacks):
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    client.force_login(make_user("root", staff=True, superuser=True))
    submission = make_submission(owner, verdict="FAKE")
    submission.video.save("video.mp4", ContentFile(b"not really a video"))
    name = submission.video.name
    assert default_storage.exists(name)
    with django_capture_on_commit_callbacks(execute=True):
        response = post_action(client, "delete_selected", [submission], post="yes")
    assert response.status_code == 302
    assert not Submission.objects.filter(pk=submission.pk).exists()
    assert not default_storage.exists(name)


LINK_PROVENANCE = {
    "source_url": "https://video.example.org/watch?v=abc123",
    "source_final_url": "https://cdn.example.org/media/abc123.mp4",
    "source_site": "example.org",
    "source_post_id": "abc123",
    "source_title": "Minister interview, 3 June",
    "source_uploader": "Newsroom Desk",
    "fetched_sha256": "5e" * 32,
}


def test_a_link_submission_page_shows_its_provenance_read_only(client, reviewer, owner):
    submission = make_submission(owner, verdict="REAL")
    Submission.objects.filter(pk=submission.pk).update(
        fetched_at=datetime(2026, 6, 3, 9, 30, tzinfo=UTC), **LINK_PROVENANCE
    )
    url = reverse("admin:detector_submission_change", args=[submission.pk])
    page = client.get(url)
    html = page.content.decode()
    assert "Source (fetched from a link)" in html
    assert "fetched from a link (below)" in html
    for value in LINK_PROVENANCE.values():
        assert value in html
    assert "June 3, 2026" in html  # the fetch time
    for name in LINK_PROVENANCE:
        assert f'name="{name}"' not in html  # shown, never a form field
    response = client.post(
        url,
        {"review_notes": "checked", "source_url": "https://elsewhere.example/", **inline_form_data(page)},
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    submission.refresh_from_db()
    assert submission.source_url == LINK_PROVENANCE["source_url"]
    # The list keeps its columns: the provenance is on the submission's page only.
    assert LINK_PROVENANCE["source_title"] not in client.get(reverse(CHANGELIST)).content.decode()


def test_an_uploaded_submission_page_says_so_and_has_no_link_section(client, reviewer, owner):
    submission = make_submission(owner, verdict="REAL")
    html = client.get(reverse("admin:detector_submission_change", args=[submission.pk])).content.decode()
    assert "uploaded file" in html
    assert "Source (fetched from a link)" not in html
