"""The fetch job in this process against a local server: a link ends as a queued analysis of the
same bytes (then the same verdict as an upload), with its provenance; every failure ends FAILED
with its own message and keeps no file; a second delivery does nothing."""

import hashlib
from datetime import timedelta
from unittest import mock

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from detector import media_files, uploads
from detector.links import jobs
from detector.links.submit import create_link_submission
from detector.models import Submission
from detector.tasks import analyze_submission, fetch_link
from tests.detector._worker_support import install_tiny_model

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_allowed")]

Status, Stage = Submission.Status, Submission.Stage
TEXT = b"This is a plain text file, not a video.\n" * 20


def link_submission(owner, url, frames=10):
    with mock.patch("detector.links.submit.transaction.on_commit"):  # the tests run the job themselves
        return create_link_submission(owner, url, frames)


def fetch(submission):
    outcome = fetch_link.apply(args=[submission.pk]).get()
    submission.refresh_from_db()
    return outcome


def stored_files(submission):
    folder = media_files.submission_folder(submission.public_id)
    return list(media_files.walk(default_storage, folder)) if default_storage.exists(folder) else []


def test_a_link_to_a_page_is_fetched_checked_stored_and_queued_with_its_provenance(
    server, clip_bytes, owner, sent
):
    server.file("/media/clip.mp4", clip_bytes)
    server.page(
        "/post/42",
        "<html><head><title>Rally speech</title></head><body><video src='/media/clip.mp4'></video>",
    )
    server.redirect("/s/42", "/post/42")
    submission = link_submission(owner, server.url("/s/42"))
    assert (submission.status, submission.stage) == (Status.FETCHING, Stage.FETCH_WAITING)

    assert fetch(submission) == "done"

    assert submission.status == Status.QUEUED and submission.claim_token == ""
    assert submission.source_url == server.url("/s/42")
    assert submission.source_final_url == server.url("/post/42")
    assert submission.source_site == "HTML5MediaEmbed" and "Rally speech" in submission.source_title
    assert submission.fetched_sha256 == hashlib.sha256(clip_bytes).hexdigest()
    assert submission.fetched_at is not None and submission.fetch_bytes == len(clip_bytes)
    assert submission.video.name == f"submissions/{submission.public_id}/video.mp4"
    with default_storage.open(submission.video.name) as f:
        assert f.read() == clip_bytes
    assert submission.size_bytes == len(clip_bytes) and submission.duration_seconds > 0


def test_a_link_gives_the_same_verdict_as_uploading_the_same_file(
    server, clip_bytes, owner, sent, tmp_path, in_process_worker
):
    install_tiny_model(tmp_path)
    server.file("/clip.mp4", clip_bytes)
    linked = link_submission(owner, server.url("/clip.mp4"))
    assert fetch(linked) == "done"
    path = tmp_path / "clip.mp4"
    path.write_bytes(clip_bytes)
    uploaded = uploads.store_video(owner, path, 10)

    for submission in (linked, uploaded):
        assert analyze_submission.apply(args=[submission.pk]).get() == "done"
        submission.refresh_from_db()
    assert linked.status == uploaded.status == Status.DONE
    assert linked.current_result.verdict == uploaded.current_result.verdict
    assert linked.current_result.fake_probability == pytest.approx(uploaded.current_result.fake_probability)


def test_the_job_reports_its_progress_in_bytes_and_percent(server, owner, monkeypatch):
    server.file("/clip.mp4", b"\0" * 300_000)
    submission = link_submission(owner, server.url("/clip.mp4"))
    seen = []
    real = jobs.FetchJob.progress

    def record(self, received, declared):
        real(self, received, declared)
        row = Submission.objects.get(pk=submission.pk)
        seen.append((row.stage, row.fetch_bytes, row.fetch_total_bytes, row.progress))

    monkeypatch.setattr(jobs, "PROGRESS_EVERY_SECONDS", 0)
    monkeypatch.setattr(jobs.FetchJob, "progress", record)
    fetch(submission)  # fails later (not a video); the progress is what is checked here
    assert seen[0][0] == Stage.FETCHING and seen[-1][1:] == (300_000, 300_000, 99)
    assert any(0 < percent < 99 for *_, percent in seen)


@pytest.mark.parametrize(
    ("setup", "words"),
    [
        (lambda s: s.file("/notes.txt", TEXT, "text/plain"), "not a readable video"),
        (
            lambda s: s.file("/fake.mp4", b"<html>not a video</html>" * 100, "video/mp4"),
            "not a readable video",
        ),
        (
            lambda s: s.page("/blog", "<html><head><title>x</title></head><body>hi</body></html>"),
            "No video was found",
        ),
        (
            lambda s: s.page(
                "/all", "<html><body><video src='/a.mp4'></video><video src='/b.mp4'></video></body></html>"
            ),
            "one video at a time",
        ),
        (lambda s: s.status("/gone", 404), "nothing at this link"),
        (lambda s: s.status("/members", 401), "log-in"),
        (lambda s: (s.redirect("/loop", "/loop2"), s.redirect("/loop2", "/loop")), "redirect loop"),
    ],
    ids=[
        "text-file",
        "html-served-as-mp4",
        "page-without-video",
        "playlist",
        "404",
        "login",
        "redirect-loop",
    ],
)
def test_each_bad_link_ends_failed_with_its_own_message_and_keeps_nothing(server, owner, setup, words):
    setup(server)
    path = [p for p in server.routes if p not in ("/a.mp4", "/b.mp4", "/loop2")][0]
    submission = link_submission(owner, server.url(path))
    assert fetch(submission) == "failed"
    assert submission.status == Status.FAILED and words in submission.error_message
    assert not submission.video and not submission.fetched_sha256 and stored_files(submission) == []
    assert submission.claim_token == ""


def test_a_video_over_the_size_limit_is_stopped_while_downloading(server, clip_bytes, owner, settings):
    settings.UPLOAD_MAX_BYTES = len(clip_bytes) // 2
    server.file("/clip.mp4", clip_bytes, close_delimited=True)  # no length declared: only the count stops it
    submission = link_submission(owner, server.url("/clip.mp4"))
    assert fetch(submission) == "failed"
    assert "larger than the" in submission.error_message and stored_files(submission) == []


def test_a_video_over_the_duration_limit_is_refused(server, clip_bytes, owner, settings):
    settings.UPLOAD_MAX_SECONDS = 1  # the clip lasts 2 s
    server.file("/clip.mp4", clip_bytes)
    submission = link_submission(owner, server.url("/clip.mp4"))
    assert fetch(submission) == "failed"
    assert "long; the limit is 1 s" in submission.error_message and stored_files(submission) == []


def test_a_server_that_stops_sending_ends_failed_with_a_stall_message(server, clip_bytes, owner, settings):
    settings.LINK_STALL_SECONDS = 1
    server.stalling("/clip.mp4", clip_bytes, after=2000)
    submission = link_submission(owner, server.url("/clip.mp4"))
    assert fetch(submission) == "failed"
    assert "stopped sending" in submission.error_message and stored_files(submission) == []


def test_with_the_setting_off_a_loopback_name_is_refused_by_the_job(server, clip_bytes, owner, settings):
    server.file("/clip.mp4", clip_bytes)
    submission = link_submission(owner, server.url("/clip.mp4"))  # allowed when submitted...
    settings.LINK_ALLOW_PRIVATE_ADDRESSES = False  # ...refused where it counts, when fetched
    assert fetch(submission) == "failed"
    assert "private, local or reserved" in submission.error_message and server.requests == []


def test_a_second_delivery_does_nothing(server, clip_bytes, owner, sent):
    server.file("/clip.mp4", clip_bytes)
    submission = link_submission(owner, server.url("/clip.mp4"))
    assert fetch(submission) == "done"
    assert fetch(submission) == "skipped"
    assert server.paths().count("/clip.mp4") == 2  # yt-dlp's look, then the download: once


def test_a_fetch_held_by_a_live_run_is_left_alone_and_a_dead_ones_is_taken_over(
    server, clip_bytes, owner, sent
):
    server.file("/clip.mp4", clip_bytes)
    submission = link_submission(owner, server.url("/clip.mp4"))
    Submission.objects.filter(pk=submission.pk).update(claim_token="fetch:other", heartbeat_at=timezone.now())
    assert fetch(submission) == "skipped"
    Submission.objects.filter(pk=submission.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    assert fetch(submission) == "done"


def test_a_submission_deleted_while_fetching_keeps_no_file(server, clip_bytes, owner, monkeypatch):
    server.file("/clip.mp4", clip_bytes)
    submission = link_submission(owner, server.url("/clip.mp4"))
    real = jobs.FetchJob.progress

    def delete_then_report(self, received, declared):
        Submission.objects.filter(pk=submission.pk).delete()
        real(self, received, declared)

    monkeypatch.setattr(jobs.FetchJob, "progress", delete_then_report)
    assert fetch_link.apply(args=[submission.pk]).get() == "lost"
    assert stored_files(submission) == []


def test_the_same_bytes_fetched_twice_point_to_the_earlier_submission(
    server, clip_bytes, owner, other, sent, client
):
    from detector import presenters

    server.file("/clip.mp4", clip_bytes)
    server.file("/copy.mp4", clip_bytes)
    first = link_submission(owner, server.url("/clip.mp4"))
    fetch(first)
    someone_else = link_submission(other, server.url("/clip.mp4"))
    fetch(someone_else)
    second = link_submission(owner, server.url("/copy.mp4"))
    fetch(second)
    assert presenters.provenance(second)["earlier"] == [first]
    assert presenters.provenance(first)["earlier"] == []  # only earlier ones, only the owner's

    client.force_login(owner)
    page = client.get(f"/submissions/{second.public_id}/").content.decode()
    assert 'data-testid="same-media"' in page and f"/submissions/{first.public_id}/" in page
    assert str(someone_else.public_id) not in page
    assert second.fetched_sha256 in page and server.url("/copy.mp4") in page


def test_recovery_resends_fetches_never_sent_or_whose_run_died(server, owner):
    never_sent = link_submission(owner, server.url("/a.mp4"))
    dead = link_submission(owner, server.url("/b.mp4"))
    live = link_submission(owner, server.url("/c.mp4"))
    old = timezone.now() - timedelta(hours=2)
    Submission.objects.filter(pk=dead.pk).update(
        claim_token="fetch:gone", heartbeat_at=old, dispatched_at=old
    )
    Submission.objects.filter(pk=live.pk).update(
        claim_token="fetch:busy", heartbeat_at=timezone.now(), dispatched_at=old
    )
    with mock.patch.object(fetch_link, "apply_async") as apply_async:
        assert jobs.resend_lost_fetches() == 2
    assert sorted(call.kwargs["args"][0] for call in apply_async.call_args_list) == sorted(
        [never_sent.pk, dead.pk]
    )


def test_a_failed_link_says_the_fetch_failed_and_what_to_do(server, owner, client):
    server.status("/members", 401)
    submission = link_submission(owner, server.url("/members"))
    fetch(submission)
    client.force_login(owner)
    page = client.get(f"/submissions/{submission.public_id}/").content.decode()
    assert "We could not fetch the video from this link" in page and "log-in" in page
    assert "We could not analyse this video" not in page
