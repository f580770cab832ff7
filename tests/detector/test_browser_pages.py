"""The finished pages in a real browser at 1280 and 390 px: what the layout does, not just the HTML.

No worker here: the results are written straight to the database, so each test takes seconds.
Screenshots land in artifacts/pages/ (git-ignored) for a person to look at.
"""

import io
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest
from django.core.files.base import ContentFile

from detector.models import FrameImage
from tests.helpers.browser import ARTIFACTS, needs_chromium
from tests.helpers.videos import face_frames
from tests.helpers.web import PASSWORD, make_detector, make_result, make_submission, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), needs_chromium]
SHOTS = ARTIFACTS / "pages"
WIDE, NARROW = 1280, 390
# What the shipped model records: the verdict card lists these, so it is as tall as in real use.
SHIPPED_METRICS = {
    "epoch": 4,
    "val_video_auc": 0.7637362637362638,
    "val_frame_auc": 0.737057864010989,
    "val_threshold": 0.8039445281028748,
    "val_threshold_rule": "false-FAKE rate <= 0.1 on validation reals (clean + compressed)",
    "val_selection_auc": 0.6895604395604396,
}


def h264_video(count=30, fps=10, size=(640, 360)):
    """A small 16:9 H.264 MP4 (what browsers play; OpenCV's mp4v is not) of the drifting test face."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        (stream.width, stream.height), stream.pix_fmt = size, "yuv420p"
        for image in face_frames(count=count, size=size, face_size=240):
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return buffer.getvalue()


def face_png(value):
    image = np.full((112, 112, 3), 200, np.uint8)
    cv2.circle(image, (56, 56), 36, (90, 120, 180 - value), -1)
    ok, data = cv2.imencode(".png", image)
    return data.tobytes()


def finished(owner, *, verdict="UNCERTAIN", frames=20, threshold=0.695):
    """A done submission with a playable video, `frames` faces, realistic scores and crops."""
    # Names as long as real ones: the shipped model's, and a clip from the shared set.
    make_detector(name="default (default/detector.pt)", metrics=SHIPPED_METRICS)
    name = "ffpp_c40_original_actors_01__kitchen_pan.mp4"
    submission = make_submission(owner, name=name, status="done", data=h264_video())
    result = make_result(submission, verdict=verdict, fake_probability=0.74, frames=frames)
    rng = np.random.default_rng(0)
    probabilities = [round(float(p), 3) for p in np.clip(rng.normal(0.7, 0.12, frames), 0, 1)]
    timestamps = [round(i * 1.45, 2) for i in range(frames)]
    result.frame_probabilities, result.frame_timestamps = probabilities, timestamps
    result.fake_probability = 0.9980670809745789
    result.details = {**result.details, "threshold": threshold}
    result.identities[0].update(frame_probabilities=probabilities, timestamps=timestamps)
    result.save()
    submission.review_decision = "confirmed_fake"
    submission.save()
    for frame in FrameImage.objects.filter(result=result):
        frame.fake_probability = probabilities[frame.position]
        frame.timestamp = timestamps[frame.position]
        frame.crop.save(f"c{frame.position}.png", ContentFile(face_png(frame.position * 5)), save=False)
        frame.save()
    return submission


def signed_in(browser, live_server, user, width):
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_load_state()
    return page


def shot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


# Lines the text of an element takes, and whether it stays inside the element's box.
TEXT_LINES = """el => {
    const range = document.createRange();
    range.selectNodeContents(el);
    const tops = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
    return {lines: tops.size, fits: range.getBoundingClientRect().width <= el.clientWidth + 1};
}"""
# Images under `selector` that have not been loaded (no picture yet): lazy ones wait for a scroll.
UNLOADED = """selector => [...document.querySelectorAll(selector)]
    .filter(img => !(img.complete && img.naturalWidth > 0)).map(img => img.getAttribute("src"))"""
# The page's icon, fetched: its status.
ICON = """async () => {
    const link = document.querySelector("link[rel~=icon]");
    return link ? (await fetch(link.href)).status : null;
}"""


@pytest.fixture
def alice():
    user = make_user("alice", staff=True)
    user.is_superuser = True
    user.save()
    return user


def test_the_result_page_on_a_desktop_and_a_phone(browser, live_server, alice):
    submission = finished(alice)
    problems = []  # every defect at once, not only the first
    for width in (WIDE, NARROW):
        page = signed_in(browser, live_server, alice, width)
        page.goto(f"{live_server.url}/submissions/{submission.public_id}/")
        # The first picture is there (HAVE_CURRENT_DATA); chromium paints it once the video has
        # been on the screen, so the full-page screenshot would otherwise show a black box.
        page.wait_for_function("document.querySelector('[data-testid=video-player]').readyState >= 2")
        page.locator('[data-testid="video-player"]').scroll_into_view_if_needed()
        page.wait_for_timeout(300)
        shot(page, f"result_{width}")

        verdict = page.eval_on_selector('[data-testid="verdict"]', TEXT_LINES)
        if verdict != {"lines": 1, "fits": True}:
            problems.append(f"{width} px: the verdict is broken or cut: {verdict}")
        if blank := page.evaluate(UNLOADED, '[data-testid="crop"] img'):
            problems.append(f"{width} px: {len(blank)} crops blank until scrolled")
        if (icon := page.evaluate(ICON)) != 200:
            problems.append(f"the page's icon: {icon}")
        # The video's box is the video (no black bands), and its card ends with it.
        video = page.eval_on_selector(
            '[data-testid="video-player"]',
            """v => ({ratio: v.clientHeight / v.clientWidth, video: v.videoHeight / v.videoWidth,
                      below: v.closest('.card').getBoundingClientRect().bottom
                             - v.getBoundingClientRect().bottom})""",
        )
        if abs(video["ratio"] - video["video"]) > 0.02 or video["below"] > 40:
            problems.append(f"{width} px: the video box {video}")
        page.context.close()
    assert not problems, "\n".join(problems)


def test_the_admin_review_pages(browser, live_server, alice):
    submission = finished(alice)
    problems = []
    for width in (WIDE, NARROW):
        page = signed_in(browser, live_server, alice, width)
        page.goto(f"{live_server.url}/admin/detector/submission/")
        shot(page, f"admin_list_{width}")
        if (icon := page.evaluate(ICON)) != 200:
            problems.append(f"the admin's icon: {icon}")
        table = page.eval_on_selector(
            "#result_list",
            "t => ({table: t.scrollWidth, room: t.parentElement.clientWidth,"
            " last: [...t.querySelectorAll('thead th')].pop().innerText.trim()})",
        )
        if width == WIDE and (table["table"] > table["room"] or table["last"] != "REVIEW DECISION"):
            problems.append(f"{width} px: the submissions table is cut off: {table}")

        page.goto(f"{live_server.url}/admin/detector/submission/{submission.pk}/change/")
        shot(page, f"admin_change_{width}")
        if blank := page.evaluate(UNLOADED, ".field-face_images img"):
            problems.append(f"{width} px: {len(blank)} admin crops blank until scrolled")
        history = page.inner_text("#results-group")
        if "0.998" not in history or "0.99806" in history or "1.00" in history:
            problems.append(f"results history: {history!r}")
        chart = page.eval_on_selector(".field-frame_chart svg", "svg => svg.getBoundingClientRect().width")
        if width == WIDE and chart < 600:
            problems.append(f"{width} px: the chart is {chart:.0f} px wide")
        page.context.close()
    assert not problems, "\n".join(problems)


def test_a_new_api_token_can_be_copied(browser, live_server, alice):
    page = signed_in(browser, live_server, alice, NARROW)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page.goto(f"{live_server.url}/account/")
    page.fill("input[name=name]", "laptop")
    page.click("form[action$='/account/tokens/'] button[type=submit]")
    page.click('[data-testid="copy-token"]')
    page.wait_for_function("document.querySelector('[data-testid=copy-token]').textContent === 'Copied'")
    shot(page, "account_390")
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth"), "the page scrolls sideways"
    assert page.evaluate("navigator.clipboard.readText()") == page.inner_text('[data-testid="new-token"]')
