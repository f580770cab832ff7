"""Log-in throttling: a failure counter per username + client address in Django's cache.

After LOGIN_THROTTLE_ATTEMPTS failures (default 5) that username cannot log in from that
address for LOGIN_THROTTLE_SECONDS (default 15 minutes), counted from the last failure.
Simple on purpose: with the default per-process memory cache the counter is per worker
process; configure a shared cache (Redis) in production for one counter across processes.
"""

import hashlib

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache
from django.core.exceptions import ValidationError


def max_attempts():
    return settings.LOGIN_THROTTLE_ATTEMPTS


def window_seconds():
    return settings.LOGIN_THROTTLE_SECONDS


def client_address(request):
    # REMOTE_ADDR only: X-Forwarded-For is client-controlled unless a trusted proxy rewrites it.
    return (request.META.get("REMOTE_ADDR") if request is not None else "") or "unknown"


def _key(username, address):
    digest = hashlib.sha256(f"{username.strip().lower()}|{address}".encode()).hexdigest()
    return f"login-failures:{digest}"


def failures(username, address):
    return cache.get(_key(username, address), 0)


def is_locked(username, address):
    return failures(username, address) >= max_attempts()


def record_failure(username, address):
    key = _key(username, address)
    count = cache.get(key, 0) + 1
    # Re-setting the timeout on each failure makes the lockout last a full window after the last try.
    cache.set(key, count, window_seconds())
    return count


def reset(username, address):
    cache.delete(_key(username, address))


def lockout_message():
    minutes = max(1, round(window_seconds() / 60))
    return (
        f"Too many failed log-in attempts. For your security, log-in for this account from your "
        f"network address is paused for {minutes} minutes. Wait and try again, or reset your password."
    )


class ThrottledAuthenticationForm(AuthenticationForm):
    def clean(self):
        username = self.cleaned_data.get("username") or ""
        address = client_address(self.request)
        if username and is_locked(username, address):
            raise ValidationError(lockout_message(), code="throttled")
        try:
            cleaned = super().clean()
        except ValidationError:
            if username and record_failure(username, address) >= max_attempts():
                raise ValidationError(lockout_message(), code="throttled") from None
            raise
        reset(username, address)
        return cleaned
