"""Pages render with no internet: no template or static file loads anything from another host."""

import re
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

ROOT = Path(__file__).resolve().parents[2]
URL = re.compile(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}[^\s\"'<>)]*", re.IGNORECASE)
# XML namespaces are identifiers, not downloads.
ALLOWED = ("http://www.w3.org/2000/svg",)


def our_files():
    for folder, patterns in (("templates", ("*.html", "*.txt")), ("static", ("*.js", "*.css", "*.html"))):
        for pattern in patterns:
            yield from (ROOT / folder).rglob(pattern)


def external_urls(text):
    return [url for url in URL.findall(text) if not url.startswith(ALLOWED)]


def test_there_are_templates_to_check():
    names = {p.name for p in our_files()}
    assert {"base.html", "submission_detail.html", "upload.js"} <= names


@pytest.mark.parametrize("path", sorted(our_files()), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_template_or_script_points_at_another_host(path):
    assert external_urls(path.read_text(encoding="utf-8")) == []


def test_the_checker_would_catch_a_cdn_link():
    assert external_urls('<script src="https://cdn.jsdelivr.net/npm/bootstrap.js"></script>')
    assert external_urls('<link href="//fonts.googleapis.com/css?family=Inter">')


@pytest.mark.django_db
def test_rendered_pages_load_only_local_assets():
    from tests.helpers.web import make_result, make_submission, make_user

    user = make_user("offline")
    submission = make_submission(user)
    make_result(submission)
    client = Client()
    client.force_login(user)
    for url in (
        reverse("home"),
        reverse("submission-list"),
        reverse("submission-create"),
        reverse("account"),
        reverse("submission-detail", kwargs={"public_id": submission.public_id}),
    ):
        html = client.get(url).content.decode()
        assets = re.findall(r'<(?:script|link|img)[^>]+(?:src|href)="([^"]+)"', html)
        assert assets, url
        assert all(a.startswith("/") and not a.startswith("//") for a in assets), (url, assets)
