"""In a real browser: the owner downloads the report from the result page, and a visitor with no
account checks it (then an edited copy) on the verify page. Screenshots in artifacts/reports/."""

import json

import pytest

from detector.reports import signing
from tests.helpers.browser import ARTIFACTS, needs_chromium
from tests.helpers.web import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), needs_chromium]
SHOTS = ARTIFACTS / "reports"


def new_page(browser, width=1280):
    page = browser.new_context(viewport={"width": width, "height": 900}, accept_downloads=True).new_page()
    page.set_default_timeout(15_000)
    return page


def test_the_owner_downloads_the_report_and_a_visitor_verifies_it(browser, live_server, finished, tmp_path):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = new_page(browser)
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", finished.owner.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_load_state()
    page.goto(f"{live_server.url}/submissions/{finished.public_id}/")
    with page.expect_download() as download:
        page.click("[data-testid=report-pdf]")
    pdf = tmp_path / download.value.suggested_filename
    download.value.save_as(pdf)
    assert pdf.name == f"report-{finished.public_id}.pdf"
    assert signing.verify_bytes(pdf.read_bytes()).outcome == signing.VALID

    visitor = new_page(browser, 390)
    visitor.goto(f"{live_server.url}/reports/verify/")
    visitor.set_input_files("#id_report", str(pdf))
    visitor.click("form button[type=submit]")
    answer = visitor.locator("[data-testid=verify-answer]")
    assert answer.get_attribute("data-outcome") == signing.VALID
    assert visitor.locator("[data-testid=verify-verdict]").inner_text().startswith("FAKE")
    visitor.screenshot(path=str(SHOTS / "verify-valid-390.png"), full_page=True)

    with page.expect_download() as download:
        page.click("[data-testid=report-json]")
    document = json.loads(open(download.value.path(), "rb").read())
    document["report"]["analysis"]["fake_probability"] = 0.013
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(document))
    visitor.set_input_files("#id_report", str(edited))
    visitor.click("form button[type=submit]")
    assert visitor.locator("[data-testid=verify-answer]").get_attribute("data-outcome") == signing.ALTERED
    visitor.screenshot(path=str(SHOTS / "verify-altered-390.png"), full_page=True)
