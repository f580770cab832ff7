"""Log-in throttling: a failure counter per username + client address in Django's cache.

After LOGIN_THROTTLE_ATTEMPTS failures (default 5) that username cannot log in from that
address for LOGIN_THROTTLE_SECONDS (default 15 minutes), counted from the last failure.
The count lives in Django's cache: Redis by default (CACHE_URL), so every web process adds to
one atomic counter. When the cache cannot be reached the throttle fails open, with a warning:
an unreachable Redis must not lock everybody out.
"""

import functools
import hashlib
import logging

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache
from django.core.exceptions import ValidationError
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)


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


def fails_open(default):
    """When the cache cannot be reached, log a warning and return `default`: an unreachable Redis
    must neither lock everyone out nor stop log-ins."""

    def decorate(function):
        @functools.wraps(function)
        def wrapper(*args):
            try:
                return function(*args)
            except (RedisError, OSError) as exc:
                logger.warning("log-in throttle off for this attempt: the cache is unreachable (%s)", exc)
                return default

        return wrapper

    return decorate


@fails_open(default=0)
def failures(username, address):
    return cache.get(_key(username, address), 0)


def is_locked(username, address):
    return failures(username, address) >= max_attempts()


@fails_open(default=0)
def record_failure(username, address):
    """Count one failure; returns the count. add + incr: concurrent failures in several processes
    are each counted once."""
    key = _key(username, address)
    cache.add(key, 0, window_seconds())
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, window_seconds())
        count = 1
    # Renewing the timeout makes the lockout last a full window after the last try.
    cache.touch(key, window_seconds())
    return count


@fails_open(default=None)
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
