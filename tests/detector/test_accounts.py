"""Accounts: sign-up, throttled log-in, log-out, password change and reset, the account page, API tokens."""

import os
import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.cache import cache
from django.test import Client, override_settings
from django.urls import reverse

from deepfake_site.env import cache_from_url
from detector.models import ApiToken
from detector.tokens import hash_secret
from tests.helpers.web import PASSWORD, make_user

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "another-long-passphrase-77"


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()  # the log-in throttle counts in the cache
    yield
    cache.clear()


@pytest.fixture
def alice():
    return make_user("alice")


def logged_in(user):
    client = Client()
    client.force_login(user)
    return client


def login(client, username, password, **extra):
    return client.post(reverse("login"), {"username": username, "password": password}, **extra)


# --- public pages ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["home", "login", "signup", "password_reset"])
def test_public_pages_open_without_a_login(name):
    assert Client().get(reverse(name)).status_code == 200


@pytest.mark.parametrize(
    "name", ["account", "password_change", "submission-list", "submission-create", "password_change_done"]
)
def test_private_pages_send_anonymous_visitors_to_log_in(name):
    response = Client().get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login") + "?next=")


def test_the_nav_shows_log_in_links_or_the_user_menu(alice):
    anonymous = Client().get(reverse("home")).content.decode()
    assert reverse("login") in anonymous and reverse("signup") in anonymous
    assert reverse("logout") not in anonymous
    member = logged_in(alice).get(reverse("home")).content.decode()
    assert (
        reverse("logout") in member and reverse("account") in member and reverse("submission-list") in member
    )
    assert reverse("admin:index") not in member


# --- sign-up --------------------------------------------------------------------------------


def test_sign_up_creates_the_user_and_logs_in():
    client = Client()
    response = client.post(
        reverse("signup"),
        {"username": "newbie", "email": "newbie@example.com", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response.status_code == 302 and response["Location"] == reverse("submission-create")
    user = get_user_model().objects.get(username="newbie")
    assert user.email == "newbie@example.com" and user.check_password(PASSWORD)
    assert client.get(reverse("submission-list")).status_code == 200


def test_sign_up_refuses_weak_passwords_and_taken_emails(alice):
    weak = Client().post(
        reverse("signup"),
        {"username": "x1", "email": "x1@example.com", "password1": "123", "password2": "123"},
    )
    assert weak.status_code == 400
    assert b"too short" in weak.content
    taken = Client().post(
        reverse("signup"),
        {"username": "x2", "email": "ALICE@example.com", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert b"already exists" in taken.content
    assert not get_user_model().objects.filter(username__in=["x1", "x2"]).exists()


def test_sign_up_needs_a_csrf_token():
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        reverse("signup"),
        {"username": "csrf", "email": "c@example.com", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response.status_code == 403
    assert not get_user_model().objects.filter(username="csrf").exists()


def test_sign_up_refuses_put():
    assert Client().put(reverse("signup")).status_code == 405


# --- log-in, log-out -------------------------------------------------------------------------


def test_log_in_and_out(alice):
    client = Client()
    response = login(client, "alice", PASSWORD)
    assert response.status_code == 302 and response["Location"] == reverse("submission-list")
    assert client.get(reverse("account")).status_code == 200
    assert client.get(reverse("logout")).status_code == 405  # log-out is a POST (a link cannot log you out)
    assert client.post(reverse("logout")).status_code == 302
    assert client.get(reverse("account")).status_code == 302


def test_log_in_needs_a_csrf_token(alice):
    client = Client(enforce_csrf_checks=True)
    assert login(client, "alice", PASSWORD).status_code == 403
    page = client.get(reverse("login")).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = client.post(
        reverse("login"), {"username": "alice", "password": PASSWORD, "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302


def test_log_out_needs_a_csrf_token(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.post(reverse("logout")).status_code == 403


def test_repeated_failed_log_ins_are_throttled(alice, settings):
    settings.LOGIN_THROTTLE_ATTEMPTS = 3
    settings.LOGIN_THROTTLE_SECONDS = 600
    client = Client()
    for _ in range(2):
        response = login(client, "alice", "wrong")
        assert b"Please enter a correct username and password" in response.content
    locked = login(client, "alice", "wrong")
    assert b"Too many failed log-in attempts" in locked.content
    assert b"paused for 10 minutes" in locked.content
    # Even the right password is refused during the lockout...
    refused = login(client, "alice", PASSWORD)
    assert refused.status_code == 200 and b"Too many failed log-in attempts" in refused.content
    assert client.get(reverse("account")).status_code == 302
    # ...but only for that username from that address.
    assert login(Client(), "alice", PASSWORD, REMOTE_ADDR="10.9.8.7").status_code == 302


def test_the_lockout_ends_when_the_window_passes(alice, settings):
    settings.LOGIN_THROTTLE_ATTEMPTS = 2
    for _ in range(2):
        login(Client(), "alice", "wrong")
    assert b"Too many" in login(Client(), "alice", PASSWORD).content
    cache.clear()  # what the window's expiry does
    assert login(Client(), "alice", PASSWORD).status_code == 302


def test_a_successful_log_in_resets_the_counter(alice, settings):
    settings.LOGIN_THROTTLE_ATTEMPTS = 3
    client = Client()
    login(client, "alice", "wrong")
    login(client, "alice", "wrong")
    assert login(client, "alice", PASSWORD).status_code == 302
    client.post(reverse("logout"))
    login(client, "alice", "wrong")
    login(client, "alice", "wrong")
    assert login(client, "alice", PASSWORD).status_code == 302


def test_every_process_adds_to_one_failure_count_in_redis(redis_url):
    """Two web processes (this one and a fresh interpreter) count into one Redis key."""
    import subprocess
    import sys
    import uuid

    from detector import auth_throttle
    from tests.conftest import ROOT

    username = f"user-{uuid.uuid4().hex}"
    # A context, not the settings fixture: the cache must be memory again before teardown clears it.
    with override_settings(CACHES={"default": cache_from_url(redis_url)}):
        assert auth_throttle.record_failure(username, "10.0.0.1") == 1
        assert auth_throttle.record_failure(username, "10.0.0.1") == 2
        other = subprocess.run(
            [
                sys.executable,
                "-c",
                "import django; django.setup(); from detector import auth_throttle; "
                f"print(auth_throttle.record_failure({username!r}, '10.0.0.1'))",
            ],
            cwd=ROOT,
            env={**os.environ, "DJANGO_SETTINGS_MODULE": "deepfake_site.settings", "CACHE_URL": redis_url},
            capture_output=True,
            text=True,
            check=True,
        )
        assert other.stdout.strip() == "3"
        assert auth_throttle.failures(username, "10.0.0.1") == 3
        auth_throttle.reset(username, "10.0.0.1")
        assert auth_throttle.failures(username, "10.0.0.1") == 0


def test_log_in_still_works_when_the_cache_is_unreachable(alice, caplog):
    with override_settings(CACHES={"default": cache_from_url("redis://127.0.0.1:1/0")}):  # nobody there
        assert b"Please enter a correct username" in login(Client(), "alice", "wrong").content
        assert login(Client(), "alice", PASSWORD).status_code == 302
    assert "the cache is unreachable" in caplog.text


# --- passwords ------------------------------------------------------------------------------


def test_password_change(alice):
    client = logged_in(alice)
    response = client.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 302 and response["Location"] == reverse("password_change_done")
    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)
    assert client.get(reverse("account")).status_code == 200  # still logged in


def test_password_change_needs_a_csrf_token(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 403


def test_password_reset_by_email(alice):
    response = Client().post(reverse("password_reset"), {"email": "alice@example.com"})
    assert response.status_code == 302 and response["Location"] == reverse("password_reset_done")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["alice@example.com"]
    assert "Reset your Deepfake detector password" in message.subject
    link = re.search(r"https?://[^/]+(/accounts/password/reset/\S+/)", message.body).group(1)
    client = Client()
    form_page = client.get(link, follow=True)
    assert b"Choose a new password" in form_page.content
    done = client.post(
        form_page.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )
    assert done.status_code == 302 and done["Location"] == reverse("password_reset_complete")
    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)


def test_password_reset_does_not_reveal_unknown_addresses():
    response = Client().post(reverse("password_reset"), {"email": "nobody@example.com"})
    assert response.status_code == 302
    assert mail.outbox == []


def test_password_reset_needs_a_csrf_token(alice):
    response = Client(enforce_csrf_checks=True).post(
        reverse("password_reset"), {"email": "alice@example.com"}
    )
    assert response.status_code == 403


# --- account page and API tokens ---------------------------------------------------------


def test_the_account_page_shows_the_profile(alice):
    html = logged_in(alice).get(reverse("account")).content.decode()
    assert "alice@example.com" in html and reverse("password_change") in html


def test_creating_a_token_shows_the_secret_once_and_stores_only_its_hash(alice):
    client = logged_in(alice)
    response = client.post(reverse("account-token-create"), {"name": "laptop"})
    assert response.status_code == 200
    secret = re.search(r'data-testid="new-token">([^<]+)<', response.content.decode()).group(1)
    token = ApiToken.objects.get(user=alice)
    assert token.name == "laptop"
    assert token.key_hash == hash_secret(secret)
    assert secret not in (token.prefix, token.key_hash) and secret.startswith(token.prefix)
    assert "no-store" in response["Cache-Control"] or "no-cache" in response["Cache-Control"]
    assert secret not in client.get(reverse("account")).content.decode()  # never shown again


def test_a_token_name_is_required(alice):
    response = logged_in(alice).post(reverse("account-token-create"), {"name": ""})
    assert response.status_code == 400
    assert not ApiToken.objects.exists()


def test_revoking_a_token(alice):
    from detector.tokens import create_token

    token, _ = create_token(alice, "old")
    response = logged_in(alice).post(reverse("account-token-revoke", kwargs={"token_id": token.pk}))
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_nobody_else_can_revoke_my_token(alice):
    from detector.tokens import create_token

    token, _ = create_token(alice, "mine")
    bob = logged_in(make_user("bob"))
    assert bob.post(reverse("account-token-revoke", kwargs={"token_id": token.pk})).status_code == 404
    assert Client().post(reverse("account-token-revoke", kwargs={"token_id": token.pk})).status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is None


def test_token_views_refuse_get_and_need_csrf(alice):
    from detector.tokens import create_token

    token, _ = create_token(alice, "mine")
    client = logged_in(alice)
    assert client.get(reverse("account-token-create")).status_code == 405
    assert client.get(reverse("account-token-revoke", kwargs={"token_id": token.pk})).status_code == 405
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    assert strict.post(reverse("account-token-create"), {"name": "x"}).status_code == 403
    assert strict.post(reverse("account-token-revoke", kwargs={"token_id": token.pk})).status_code == 403


def test_the_account_page_refuses_post(alice):
    assert logged_in(alice).post(reverse("account")).status_code == 405
