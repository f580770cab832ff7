"""Site-wide bits: the icon every page names, and /favicon.ico for clients that ask for it anyway."""

import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_it_sends_favicon_ico_to_the_sites_icon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"] == "/static/favicon.svg"
    assert finders.find("favicon.svg")


def test_it_answers_only_reads_at_favicon_ico(client):
    assert client.post("/favicon.ico").status_code == 405


@pytest.mark.parametrize(
    "url",
    [reverse("home"), reverse("login"), reverse("admin:login"), "/no-such-page/"],
    ids=["home", "login", "admin", "404"],
)
def test_every_page_names_the_icon(client, url):
    html = client.get(url).content.decode()
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in html
