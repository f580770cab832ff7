"""API tokens and sessions: revocation is immediate, secrets are never stored, the API ignores cookies."""

import json
import subprocess
import sys

import pytest
from django.urls import reverse

from detector.models import ApiToken, User
from detector.tokens import create_token, hash_secret
from tests.conftest import ROOT
from tests.deepfake_site.test_settings import PRODUCTION_ENV

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice():
    return User.objects.create_user("alice", password="pw-alice-123")


def api_list(client, secret):
    return client.get(reverse("api-submission-list"), HTTP_AUTHORIZATION=f"Token {secret}")


def test_a_revoked_token_stops_working_on_the_very_next_request(client, alice):
    token, secret = create_token(alice, "laptop")
    assert api_list(client, secret).status_code == 200
    client.force_login(alice)
    response = client.post(reverse("account-token-revoke", kwargs={"token_id": token.pk}))
    assert response.status_code == 302
    client.logout()
    response = api_list(client, secret)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_a_token_stops_working_when_its_user_is_deactivated(client, alice):
    _, secret = create_token(alice, "laptop")
    alice.is_active = False
    alice.save()
    assert api_list(client, secret).status_code == 401


def test_only_the_hash_of_a_token_is_stored(alice):
    token, secret = create_token(alice, "ci")
    row = ApiToken.objects.get(pk=token.pk)
    values = json.dumps(list(ApiToken.objects.filter(pk=token.pk).values()), default=str)
    assert secret not in values
    assert row.key_hash == hash_secret(secret)
    assert len(secret) >= 40  # 32 random bytes, url-safe


def test_another_user_cannot_revoke_my_token(client, alice):
    token, secret = create_token(alice, "laptop")
    mallory = User.objects.create_user("mallory", password="pw-mallory-123")
    client.force_login(mallory)
    response = client.post(reverse("account-token-revoke", kwargs={"token_id": token.pk}))
    assert response.status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None
    client.logout()
    assert api_list(client, secret).status_code == 200


@pytest.mark.parametrize(
    "header",
    [
        "Token",
        "Token ",
        "Token dfd_not-a-real-token",
        "Bearer {secret}",
        "token  {secret}x",
        "Token " + "A" * 5000,
    ],
)
def test_malformed_or_wrong_authorization_headers_are_refused(client, alice, header):
    _, secret = create_token(alice, "laptop")
    response = client.get(reverse("api-submission-list"), HTTP_AUTHORIZATION=header.format(secret=secret))
    assert response.status_code == 401


def test_the_api_ignores_the_session_cookie_so_csrf_cannot_ride_on_it(client, alice):
    client.force_login(alice)
    assert client.get(reverse("api-submission-list")).status_code == 401
    assert client.post(reverse("api-submission-list"), {}).status_code == 401


def test_the_upload_page_refuses_a_post_without_a_csrf_token(alice):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    response = strict.post(reverse("submission-create"), {"frames": "20"})
    assert response.status_code == 403


def test_production_session_and_csrf_cookies_are_secure_and_http_only():
    names = [
        "SESSION_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY", "CSRF_COOKIE_SECURE", "SECURE_HSTS_SECONDS",
        "SECURE_SSL_REDIRECT", "X_FRAME_OPTIONS", "SECURE_CONTENT_TYPE_NOSNIFF", "DEBUG",
        "SESSION_COOKIE_SAMESITE", "CSRF_COOKIE_SAMESITE",
    ]  # fmt: skip
    code = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        f"print(json.dumps({{k: getattr(s, k, None) for k in {names!r}}}))"
    )
    env = {"DJANGO_SETTINGS_MODULE": "deepfake_site.settings", "PATH": "/usr/bin:/bin"} | PRODUCTION_ENV
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    values = json.loads(out.stdout.strip().splitlines()[-1])
    assert (
        values["SESSION_COOKIE_SECURE"] and values["SESSION_COOKIE_HTTPONLY"] and values["CSRF_COOKIE_SECURE"]
    )
    assert values["SECURE_HSTS_SECONDS"] >= 31536000 and values["SECURE_SSL_REDIRECT"]
    assert values["X_FRAME_OPTIONS"] == "DENY" and values["SECURE_CONTENT_TYPE_NOSNIFF"]
    assert values["DEBUG"] is False
    assert values["SESSION_COOKIE_SAMESITE"] in ("Lax", "Strict")
