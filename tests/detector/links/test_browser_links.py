"""A link pasted into the upload page in a real browser: the page answers at once with the fetching
stage and the link's provenance, and after the fetch job the SHA-256 of the fetched bytes.

The fetch job runs in this test's process (fetch_link.apply), not a worker: its message is captured
when the form is posted, so the "waiting to fetch" page is seen every time, not raced.
"""

import hashlib
from unittest import mock

import pytest

from detector.models import Submission
from detector.tasks import fetch_link
from tests.helpers.browser import needs_chromium
from tests.helpers.web import PASSWORD

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    needs_chromium,
    pytest.mark.usefixtures("private_allowed"),
]


def test_a_pasted_link_shows_the_fetching_stage_then_the_fetched_files_sha256(
    browser,
    live_server,
    server,
    clip_bytes,
    owner,
    sent,  # sent: no analysis job leaves the test
):
    server.file("/media/clip.mp4", clip_bytes)
    link = server.url("/media/clip.mp4")
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", owner.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_load_state()

    page.goto(f"{live_server.url}/submissions/new/")
    page.fill('input[name="link"]', link)
    with mock.patch.object(fetch_link, "apply_async") as queued:
        page.click("#upload-submit")
        page.wait_for_url(f"{live_server.url}/submissions/*/")
    submission = Submission.objects.get()
    assert queued.call_args.kwargs["args"] == [submission.pk]
    assert page.url.endswith(f"/submissions/{submission.public_id}/")
    assert "Waiting to fetch the video from the link." in page.locator("#live-status").inner_text()
    assert link in page.locator('[data-testid="provenance"]').inner_text()

    assert fetch_link.apply(args=[submission.pk]).get() == "done"
    page.reload()
    shown = page.locator('[data-testid="provenance-sha256"]').inner_text()
    assert shown == hashlib.sha256(clip_bytes).hexdigest()
    submission.refresh_from_db()
    assert submission.status == Submission.Status.QUEUED  # the fetched video is in line for analysis
