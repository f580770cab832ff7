"""Fixtures shared by the detector tests: the usual cast of users, and captured job messages."""

from unittest import mock

import pytest

from tests.helpers.web import make_user


@pytest.fixture
def owner():
    return make_user("owner")


@pytest.fixture
def other():
    return make_user("other")


@pytest.fixture
def staff():
    return make_user("staffer", staff=True)


@pytest.fixture
def sent():
    """Capture job messages instead of publishing them; sent at once (these tests never commit)."""
    from detector import services
    from detector.tasks import analyze_submission

    with (
        mock.patch.object(analyze_submission, "apply_async") as apply_async,
        mock.patch("detector.services.dispatch_on_commit", side_effect=services.dispatch),
    ):
        yield apply_async


@pytest.fixture
def in_process_worker(settings, tmp_path):
    """Settings for running jobs inside this test's transaction, and a fresh model cache."""
    from detector.worker import runtime as worker_runtime

    # The heartbeat thread has its own connection, which cannot see this test's open transaction.
    settings.DETECTOR_HEARTBEAT_SECONDS = 3600
    settings.DETECTOR_LEASE_SECONDS = 60
    settings.DETECTOR_CACHE_DIR = str(tmp_path / "model-cache")
    settings.DETECTOR_EXPLAIN = True
    worker_runtime.forget()
    yield
    worker_runtime.forget()


@pytest.fixture
def browser(monkeypatch):
    """Debian's chromium through Playwright (tests using it skip where it is missing)."""
    from tests.helpers.browser import launched_chromium

    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    # Playwright's sync API runs an event loop in this thread; the ORM calls that the live server
    # fixtures make from here would otherwise raise SynchronousOnlyOperation. Scoped to the tests
    # that drive a browser, so the flag never leaks into other tests' subprocesses.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = launched_chromium(playwright)
        yield browser
        browser.close()
