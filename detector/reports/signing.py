"""The service's Ed25519 report key, signing a report's content, and checking a report file.

The signature covers the canonical form of the report's content: JSON with sorted keys, no
whitespace, UTF-8 (`canonical`). The key is REPORT_SIGNING_KEY (PEM, from the environment) or a
key created on first use in REPORT_SIGNING_KEY_DIR (mode 0600). Every key ever used is listed in
that folder's public_keys.json with the dates it was in use, so rotating the key (a new
REPORT_SIGNING_KEY, or `manage.py rotate_report_key`) keeps old reports verifiable.

`verify_bytes` reads a JSON or PDF report and answers with one of the OUTCOMES, never raising.
"""

import base64
import binascii
import fcntl
import hashlib
import json
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from ml_core.io import atomic_write

logger = logging.getLogger(__name__)

FORMAT = "deepfake-detector-report"
FORMAT_VERSION = 1
ALGORITHM = "Ed25519"
CANONICAL_FORM = (
    "JSON of `report`: keys sorted, no whitespace (separators ',' and ':'), UTF-8, no ASCII escaping"
)
PRIVATE_FILE = "signing_key.pem"
PUBLIC_FILE = "public_keys.json"

VALID, ALTERED, UNKNOWN_KEY, NOT_A_REPORT, TRUNCATED = (
    "valid",
    "altered",
    "unknown_key",
    "not_a_report",
    "truncated",
)
OUTCOMES = (VALID, ALTERED, UNKNOWN_KEY, NOT_A_REPORT, TRUNCATED)


def canonical(report):
    return json.dumps(
        report, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def key_id_of(public_raw):
    return hashlib.sha256(public_raw).hexdigest()[:16]


def _public_raw(private_key):
    return private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _b64(data):
    return base64.b64encode(data).decode("ascii")


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey
    key_id: str
    public_key: str  # base64 of the 32 raw bytes


def _as_signing_key(private_key):
    raw = _public_raw(private_key)
    return SigningKey(private_key, key_id_of(raw), _b64(raw))


def _load_pem(data, where):
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(f"{where} is not a PEM private key without a password ({exc}).") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ImproperlyConfigured(f"{where} holds a {type(key).__name__}, not an Ed25519 key.")
    return key


def _key_dir():
    return Path(settings.REPORT_SIGNING_KEY_DIR)


@contextmanager
def _locked(folder):
    """One process at a time creates, rotates or lists keys in this folder."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(folder / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_private(path, private_key):
    """Write the key readable by this user only; an existing file wins (another process was first)."""
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_public_keys(folder=None):
    path = (folder or _key_dir()) / PUBLIC_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        logger.error("%s is unreadable (%s): no old report keys are listed", path, exc)
        return []
    keys = data.get("keys") if isinstance(data, dict) else None
    return [k for k in keys or [] if isinstance(k, dict) and "key_id" in k and "public_key" in k]


def _record(folder, key, now):
    """List `key` in public_keys.json as in use from now on, closing the key it replaces."""
    keys = read_public_keys(folder)
    if any(k["key_id"] == key.key_id for k in keys):
        return keys
    for old in keys:
        if not old.get("valid_until"):
            old["valid_until"] = now.isoformat()
    keys.append(
        {
            "key_id": key.key_id,
            "algorithm": ALGORITHM,
            "public_key": key.public_key,
            "valid_from": now.isoformat(),
            "valid_until": None,
        }
    )
    with atomic_write(folder / PUBLIC_FILE, "w") as handle:
        json.dump({"keys": keys}, handle, indent=1)
    return keys


def current_key():
    """The key that signs new reports (created on first use when none is configured)."""
    folder = _key_dir()
    if settings.REPORT_SIGNING_KEY:
        key = _as_signing_key(_load_pem(settings.REPORT_SIGNING_KEY.encode(), "REPORT_SIGNING_KEY"))
        try:
            with _locked(folder):
                _record(folder, key, timezone.now())
        except OSError as exc:  # a read-only deployment: the key still signs, old keys go unlisted
            logger.warning("cannot list the report key in %s (%s)", folder, exc)
        return key
    path = folder / PRIVATE_FILE
    with _locked(folder):
        if not path.exists():
            _write_private(path, Ed25519PrivateKey.generate())
            logger.info("created a new report signing key in %s", path)
        key = _as_signing_key(_load_pem(path.read_bytes(), str(path)))
        _record(folder, key, timezone.now())
    return key


def rotate_key():
    """Replace the key file's key with a new one; the old public key stays listed, dated."""
    if settings.REPORT_SIGNING_KEY:
        raise ImproperlyConfigured(
            "The report key comes from REPORT_SIGNING_KEY: rotate it by setting a new one there."
        )
    folder = _key_dir()
    with _locked(folder):
        new = Ed25519PrivateKey.generate()
        _write_private(folder / PRIVATE_FILE, new)  # the old private key is gone: it can sign no more
        key = _as_signing_key(new)
        _record(folder, key, timezone.now())
    return key


def published_keys():
    """Every public key this service signed reports with, the current one last."""
    current = current_key()
    keys = read_public_keys()
    if not any(k["key_id"] == current.key_id for k in keys):
        keys.append(
            {
                "key_id": current.key_id,
                "algorithm": ALGORITHM,
                "public_key": current.public_key,
                "valid_from": None,
                "valid_until": None,
            }
        )
    return keys


def sign(report):
    """The signed document: the report, and a signature over its canonical form."""
    key = current_key()
    signature = key.private.sign(canonical(report))
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "report": report,
        "signature": {
            "algorithm": ALGORITHM,
            "key_id": key.key_id,
            "public_key": key.public_key,
            "signed_form": CANONICAL_FORM,
            "value": _b64(signature),
        },
    }


def document_bytes(document):
    """The JSON file: indented for people; the signature covers the canonical form, not this text."""
    return (json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


# --- checking a file -----------------------------------------------------------------------------


@dataclass
class Verification:
    outcome: str
    message: str
    report: dict | None = None
    key: dict | None = field(default=None)

    @property
    def valid(self):
        return self.outcome == VALID


def _verifies(public_raw, signature, data):
    try:
        Ed25519PublicKey.from_public_bytes(public_raw).verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True


def _decode(text):
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError, TypeError):
        return None


def verify_document(document, keys=None):
    """Check a parsed document against this service's published keys."""
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        return Verification(NOT_A_REPORT, "This is JSON, but not a report of this service.")
    report, signature = document.get("report"), document.get("signature")
    if not isinstance(report, dict) or not isinstance(signature, dict):
        return Verification(ALTERED, "The report has lost its content or its signature: it was edited.")
    value = _decode(signature.get("value")) if isinstance(signature.get("value"), str) else None
    if signature.get("algorithm") != ALGORITHM or value is None:
        return Verification(ALTERED, "The signature is missing or malformed: the report was edited.", report)
    try:
        data = canonical(report)
    except ValueError:
        return Verification(
            ALTERED, "The report holds values no signed report can hold: it was edited.", report
        )
    keys = published_keys() if keys is None else keys
    ours = next((k for k in keys if k.get("key_id") == signature.get("key_id")), None)
    if ours is None:
        embedded = (
            _decode(signature.get("public_key")) if isinstance(signature.get("public_key"), str) else None
        )
        consistent = embedded is not None and _verifies(embedded, value, data)
        return Verification(
            UNKNOWN_KEY,
            "This report was signed by another key, not one of this service's"
            + (
                " (the signature matches the key written inside it, which anyone can make)."
                if consistent
                else "."
            ),
            report,
        )
    public_raw = _decode(ours["public_key"]) or b""
    if not _verifies(public_raw, value, data):
        return Verification(
            ALTERED,
            "The report was altered after it was signed: its content does not match its signature.",
            report,
            ours,
        )
    if ours.get("valid_until"):
        period = f"in use from {when(ours.get('valid_from'))} until {when(ours['valid_until'])}"
    else:
        period = f"in use since {when(ours.get('valid_from'))}"
    return Verification(
        VALID,
        f"Valid: signed by this service's key {ours['key_id']} ({period}) and not altered since.",
        report,
        ours,
    )


def when(iso):
    """An ISO time as people read it ("2026-12-06 22:36 UTC"); anything else as it is."""
    if not iso:
        return "the start"
    try:
        moment = datetime.fromisoformat(iso).astimezone(UTC)
    except (TypeError, ValueError):
        return str(iso)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _looks_like_report_text(head):
    return FORMAT.encode() in head[:200]


def verify_bytes(data, keys=None):
    """Check a report file (JSON or PDF) given as bytes; always answers, never raises."""
    from .pdf import embedded_document

    if not data:
        return Verification(NOT_A_REPORT, "The file is empty.")
    if data.startswith(b"%PDF"):
        if b"%%EOF" not in data[-2048:]:
            return Verification(
                TRUNCATED, "This PDF is cut short (it has no end): it was truncated or damaged."
            )
        raw = embedded_document(data)
        if raw is None:
            return Verification(NOT_A_REPORT, "This PDF holds no signed report of this service.")
        data = raw
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return Verification(NOT_A_REPORT, "This is neither a PDF nor a JSON report.")
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        if _looks_like_report_text(data.lstrip()):
            return Verification(
                TRUNCATED, "This report's JSON is cut short or damaged: it cannot be read whole."
            )
        return Verification(NOT_A_REPORT, "This is neither a PDF nor a JSON report.")
    return verify_document(document, keys)
