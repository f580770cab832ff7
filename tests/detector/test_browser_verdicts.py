"""Verdicts people can read, in a real browser at 1280 and 390 px (issue 24).

Every page a newcomer meets (home, upload, progress, the result as REAL, FAKE, UNCERTAIN, with
several people and with no face, the list and the model page) is screenshotted into
var/screenshots/verdicts/ (git-ignored) for a person to look at, and its text is checked: the
score's definition, its context among the model's test scores, the link to the model's card, and
no architecture but the active model's. No worker: results are written straight to the database.
"""

from pathlib import Path

import cv2
import numpy as np
import pytest
from django.core.files.base import ContentFile

from detector.models import DetectorModel, FrameImage
from ml_core.constants import DEFAULT_CHECKPOINT
from ml_core.inference.score import SCORE_DEFINITION, bootstrap_interval, person_score
from ml_core.inference.score import verdict as verdict_rule
from ml_core.model.names import describe_architecture
from ml_core.model.test_figures import read_beside
from tests.detector.test_browser_pages import TEXT_LINES, h264_video, signed_in
from tests.helpers.browser import needs_chromium
from tests.helpers.web import make_result, make_submission, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), needs_chromium]
SHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots" / "verdicts"
WIDTHS = (1280, 390)
SHIPPED_CONFIG = {
    "backbone": "efficientnet_lite0",
    "temporal": "reference",
    "aggregation": "mean",
    "image_size": 160,
    "threshold": 0.8039,
    "uncertain_band": 0.1,
}
THRESHOLD, BAND = 0.8039, 0.1
# Everything on the pages a person reads, without the scripts and the SVG's own titles.
VISIBLE_TEXT = "document.body.innerText"


def shipped_detector():
    """The active model as `make run` installs the shipped one: its config and test figures."""
    return DetectorModel.objects.create(
        name="default (default/detector.pt)",
        sha256="ab" * 32,  # make_result looks the test model up by this hash
        config=SHIPPED_CONFIG,
        metrics={"kind": "native", "epoch": 4, "test_scores": read_beside(DEFAULT_CHECKPOINT)},
        is_active=True,
        notes="shipped default",
    )


def face_image(seed, heat=False):
    """A 160 px face-like crop; with `heat`, a JET overlay whose hot spot sits on the shoulder."""
    rng = np.random.default_rng(seed)
    image = np.full((160, 160, 3), (150, 170, 190), np.uint8)
    cv2.ellipse(image, (80, 78), (44, 56), 0, 0, 360, (120, 150, 200 - 3 * seed % 40), -1)
    cv2.circle(image, (62, 66), 6, (40, 40, 40), -1)
    cv2.circle(image, (98, 66), 6, (40, 40, 40), -1)
    cv2.ellipse(image, (80, 104), (16, 6), 0, 0, 180, (60, 60, 150), 2)
    image = np.clip(image.astype(np.int16) + rng.integers(-8, 8, image.shape), 0, 255).astype(np.uint8)
    if heat:
        cam = np.zeros((160, 160), np.float32)
        cv2.circle(cam, (135 if seed % 2 else 80, 145 if seed % 2 else 80), 30, 1.0, -1)
        cam = cv2.GaussianBlur(cam, (0, 0), 12)
        colour = cv2.applyColorMap(np.uint8(255 * cam / cam.max()), cv2.COLORMAP_JET)
        image = cv2.addWeighted(image, 0.55, colour, 0.45, 0)
    return image


def encoded(image, extension):
    ok, data = cv2.imencode(extension, image)
    assert ok
    return ContentFile(data.tobytes())


def finished(owner, name, scores_per_person, *, verdict):
    """A done submission whose people have these per-face scores, scored as the worker would."""
    rng = np.random.default_rng(len(name))
    submission = make_submission(owner, name=name, status="done", data=h264_video())
    frames = len(scores_per_person[0])
    result = make_result(
        submission, verdict=verdict, frames=frames, identities=tuple(range(len(scores_per_person)))
    )
    people = []
    for identity, scores in enumerate(scores_per_person):
        scores = [round(float(s), 4) for s in scores]
        interval = bootstrap_interval([scores])
        people.append(
            {
                "id": identity,
                "label": "",
                "fake_probability": person_score(scores),
                "frame_probabilities": scores,
                "frame_indices": [i * 12 for i in range(frames)],
                "timestamps": [round(i * 0.5, 2) for i in range(frames)],
                "counted": True,
                "interval": [round(v, 6) for v in interval],
                # Every other crop with its heat mostly on the shoulder, as Grad-CAM often does.
                "heat_in_face": [0.15 if i % 2 else 0.85 for i in range(frames)],
            }
        )
    decisive = max(people, key=lambda p: p["fake_probability"])
    for person in people:
        person["label"] = verdict if person is decisive else "REAL"
    low, high = bootstrap_interval([p["frame_probabilities"] for p in people])
    # The verdict the worker would give these scores: the pages must explain the real rule.
    assert verdict_rule(decisive["fake_probability"], THRESHOLD, BAND, (low, high)) == verdict
    result.fake_probability = decisive["fake_probability"]
    result.frame_probabilities = people[0]["frame_probabilities"]
    result.frame_timestamps = people[0]["timestamps"]
    result.identities = people
    result.details = {
        "threshold": THRESHOLD,
        "uncertain_band": BAND,
        "main_identity": 0,
        "decisive_identity": decisive["id"],
        "score_interval": [round(low, 6), round(high, 6)],
        "interval_level": 0.9,
        "warnings": [],
    }
    result.save()
    for frame in FrameImage.objects.filter(result=result):
        person = people[frame.identity]
        frame.fake_probability = person["frame_probabilities"][frame.position]
        frame.timestamp = person["timestamps"][frame.position]
        seed = frame.position + 7 * frame.identity + int(rng.integers(0, 5))
        frame.crop.save(
            f"c{frame.identity}_{frame.position}.png", encoded(face_image(seed), ".png"), save=False
        )
        overlay = face_image(seed, heat=True)
        frame.overlay.save(f"o{frame.identity}_{frame.position}.jpg", encoded(overlay, ".jpg"), save=False)
        frame.save()
    return submission


@pytest.fixture
def pages(live_server):
    """The URLs of every page to look at, with their data."""
    owner = make_user("journalist")
    shipped_detector()
    rng = np.random.default_rng(0)
    real = finished(
        owner, "press_conference_real.mp4", [np.clip(rng.normal(0.3, 0.08, 20), 0, 1)], verdict="REAL"
    )
    fake = finished(owner, "swapped_anchor.mp4", [np.clip(rng.normal(0.95, 0.02, 20), 0, 1)], verdict="FAKE")
    # Faces that disagree: a score above the band whose likely range crosses the threshold.
    mixed = np.array([0.9999, 0.2, 0.9998, 0.25, 0.9999, 0.18, 0.9997, 0.22, 0.9999, 0.2, 0.9998, 0.21])
    uncertain = finished(owner, "ffpp_c40_original_actors_01__kitchen_pan.mp4", [mixed], verdict="UNCERTAIN")
    several = finished(
        owner,
        "panel_two_people.mp4",
        [np.clip(rng.normal(0.3, 0.1, 12), 0, 1), np.clip(rng.normal(0.93, 0.03, 12), 0, 1)],
        verdict="FAKE",
    )
    no_face = make_submission(
        owner,
        name="landscape_no_people.mp4",
        status="failed",
        stage="finished",
        error_message="No face was found in the sampled frames.",
    )
    running = make_submission(
        owner, name="still_running.mp4", status="running", stage="classifying", progress=60
    )
    detail = "/submissions/{}/".format
    return owner, {
        "home": "/",
        "upload": "/submissions/new/",
        "progress": detail(running.public_id),
        "result_real": detail(real.public_id),
        "result_fake": detail(fake.public_id),
        "result_uncertain": detail(uncertain.public_id),
        "result_several": detail(several.public_id),
        "result_no_face": detail(no_face.public_id),
        "list": "/submissions/",
        "model": "/model/",
    }


def test_every_page_a_newcomer_meets_at_both_widths(browser, live_server, pages):
    owner, urls = pages
    architecture = describe_architecture(SHIPPED_CONFIG["backbone"], SHIPPED_CONFIG["temporal"])
    problems = []
    for width in WIDTHS:
        page = signed_in(browser, live_server, owner, width)
        for name, url in urls.items():
            page.goto(f"{live_server.url}{url}")
            page.wait_for_load_state("networkidle")
            if page.locator('[data-testid="video-player"]').count():
                # Chromium paints the first picture once the video has been on the screen.
                page.wait_for_function("document.querySelector('[data-testid=video-player]').readyState >= 2")
                page.locator('[data-testid="video-player"]').scroll_into_view_if_needed()
                page.evaluate("window.scrollTo(0, 0)")
                page.wait_for_timeout(200)
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / f"{name}_{width}.png"), full_page=True)
            text = page.evaluate(VISIBLE_TEXT)
            where = f"{name} at {width} px"
            if "ResNeXt" in text or "LSTM" in text:
                problems.append(f"{where}: claims an architecture the active model does not have")
            if not page.evaluate("document.documentElement.scrollWidth <= innerWidth + 1"):
                problems.append(f"{where}: the page scrolls sideways")
            if name.startswith("result_") and name != "result_no_face":
                problems.extend(f"{where}: {p}" for p in check_result(page, text))
            if name in ("list", "model") and SCORE_DEFINITION not in text:
                problems.append(f"{where}: no definition of the score")
            if name == "model":
                for expected in (architecture, "2 of 19 (11%)", "Where it fails", "ab" * 32):
                    if expected not in text:
                        problems.append(f"{where}: {expected!r} missing")
            if name == "upload" and "changed the verdict of 1 clip in 29" not in text:
                problems.append(f"{where}: no measured figure for the frame count")
        page.context.close()
    assert not problems, "\n".join(problems)


def check_result(page, text):
    problems = []
    if SCORE_DEFINITION not in text:
        problems.append("no definition of the score")
    if "real test videos" not in text or "reached the model's threshold" not in text:
        problems.append("no score in context")
    if not page.locator('[data-testid="model-link"]').count():
        problems.append("no link to the model's card")
    if "likely range" not in page.inner_text('[data-testid="score-range"]'):
        problems.append("no likely range")
    verdict = page.eval_on_selector('[data-testid="verdict"]', TEXT_LINES)
    if verdict != {"lines": 1, "fits": True}:
        problems.append(f"the verdict is broken or cut: {verdict}")
    if not page.locator(".score-line").count():
        problems.append("the chart has no score line")
    if "Reading the heat map" not in text or not page.locator('[data-testid="heat-outside"]').count():
        problems.append("no Grad-CAM guide or no note on crops heated off the face")
    return problems


def test_the_uncertain_verdict_says_its_range_crosses_the_threshold(browser, live_server, pages):
    owner, urls = pages
    page = signed_in(browser, live_server, owner, 390)
    page.goto(f"{live_server.url}{urls['result_uncertain']}")
    assert page.inner_text('[data-testid="verdict"]') == "UNCERTAIN"
    reason = page.inner_text('[data-testid="uncertainty"]')
    assert "reaches both sides of the threshold (80%)" in reason and "within" not in reason
    page.click('[data-testid="model-link"]')
    page.wait_for_url("**/model/")
    assert "Where it fails" in page.inner_text("body")
    page.context.close()
