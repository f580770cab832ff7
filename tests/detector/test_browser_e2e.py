"""End to end in a real browser: sign up, upload, watch the live progress reach a verdict, see
the crops and the Grad-CAM toggle, log out; another user then gets 404 on the page and its media.

Debian's chromium driven by Playwright, a live server, a real Celery worker process on Redis and
a tiny checkpoint installed through the registry. Screenshots land in artifacts/ (git-ignored).
"""

import re

import pytest

from tests.helpers.browser import ARTIFACTS, needs_chromium
from tests.helpers.checkpoints import make_tiny_checkpoint
from tests.helpers.videos import make_face_video
from tests.helpers.web import PASSWORD

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True), needs_chromium]


def sign_up(page, base_url, username):
    page.goto(f"{base_url}/accounts/signup/")
    page.fill("input[name=username]", username)
    page.fill("input[name=email]", f"{username}@example.com")
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url(f"{base_url}/submissions/new/")


def test_sign_up_upload_watch_the_verdict_and_keep_it_private(
    browser, live_server, celery_broker, start_worker, tmp_path, settings
):
    from detector.registry import install_checkpoint

    install_checkpoint(
        make_tiny_checkpoint(tmp_path / "tiny.pt", verdict="FAKE"), name="tiny e2e", activate=True
    )
    worker = start_worker()
    clip = make_face_video(tmp_path / "interview.mp4", count=30, fps=10.0)
    ARTIFACTS.mkdir(exist_ok=True)
    base = live_server.url

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    sign_up(page, base, "alice")

    # An obviously oversized file is refused in the browser, before anything is sent.
    settings.UPLOAD_MAX_BYTES = 1000
    page.reload()
    posts = []
    page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)
    page.set_input_files("input[name=video]", str(clip))
    page.click("#upload-submit")
    assert "the limit is 1000 bytes" in page.inner_text('[data-testid="upload-errors"]')
    assert posts == []
    settings.UPLOAD_MAX_BYTES = 200 * 1024 * 1024
    page.reload()

    # The upload page: choose the clip and a frame count, submit, land on the submission's page.
    assert page.locator("select[name=frames]").input_value() == "20"
    page.set_input_files("input[name=video]", str(clip))
    page.select_option("select[name=frames]", "10")
    page.screenshot(path=str(ARTIFACTS / "upload_page.png"), full_page=True)
    page.click("#upload-submit")
    page.wait_for_url(re.compile(r".*/submissions/[0-9a-f-]{36}/$"))
    detail_url = page.url
    # The live status box is there while the job runs; progress moves without a page reload
    # (a reload would drop the marker set on this document).
    assert page.locator("#status-bar").count() == 1
    page.evaluate("window.__sameDocument = true")
    try:
        page.wait_for_function(
            "window.__sameDocument === true"
            " && parseInt(document.querySelector('#status-bar').textContent) > 0",
            timeout=180_000,
        )
    except Exception as exc:
        status = page.request.get(detail_url + "status.json").text()
        raise AssertionError(f"no progress; status {status}\nworker log:\n{worker.log[-3000:]}") from exc
    page.screenshot(path=str(ARTIFACTS / "progress_page.png"), full_page=True)

    # Live progress (polling, no reload) until the server-rendered verdict appears.
    page.wait_for_selector('[data-testid="verdict"]', timeout=180_000)
    assert page.inner_text('[data-testid="verdict"]') == "FAKE"
    assert "probability of being fake" in page.inner_text("main")
    assert page.inner_text('[data-testid="model-name"]') == "tiny e2e"
    assert page.locator("svg.frame-chart circle").count() >= 1

    crops = page.locator('[data-testid="crop"] img')
    assert crops.count() >= 5
    first = crops.first
    first.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=first.element_handle())
    crop_src = first.get_attribute("src")
    assert "/crop/" in crop_src

    page.check('[data-testid="overlay-toggle"]')
    assert "/overlay/" in first.get_attribute("src")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=first.element_handle())
    overlay_src = first.get_attribute("src")
    video_src = page.get_attribute('[data-testid="video-player"]', "src")
    assert page.request.get(base + video_src).status == 200
    page.screenshot(path=str(ARTIFACTS / "result_page.png"), full_page=True)
    page.uncheck('[data-testid="overlay-toggle"]')
    assert "/crop/" in first.get_attribute("src")

    page.click('[data-testid="logout"]')
    page.wait_for_url(f"{base}/")
    assert page.request.get(detail_url, max_redirects=0).status == 302  # anonymous: to the log-in page

    # Another user: the page and every file of alice's submission are 404.
    sign_up(page, base, "mallory")
    assert page.goto(detail_url).status == 404
    for url in (video_src, crop_src, overlay_src):
        assert page.request.get(base + url).status == 404, url
    context.close()
