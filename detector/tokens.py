"""API tokens: the secret is shown once; only its SHA-256 is stored."""

import hashlib
import secrets

from django.utils import timezone

from .models import ApiToken

SECRET_PREFIX = "dfd_"  # noqa: S105 - a public marker, not a secret


def hash_secret(secret):
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(user, name):
    """Create a token for `user`; return (ApiToken, secret). The secret is not recoverable later."""
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name, prefix=secret[: len(SECRET_PREFIX) + 6], key_hash=hash_secret(secret)
    )
    return token, secret


def revoke_token(token):
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])


def user_for_secret(secret):
    """The active user holding this un-revoked token secret, or None."""
    if not secret or len(secret) > 200:
        return None
    token = (
        ApiToken.objects.select_related("user")
        .filter(key_hash=hash_secret(secret), revoked_at__isnull=True)
        .first()
    )
    if token is None or not token.user.is_active:
        return None
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    return token.user


def user_from_authorization(request):
    """The user named by an `Authorization: Token <secret>` header, or None (never the session)."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "token":
        return None
    return user_for_secret(secret.strip())
