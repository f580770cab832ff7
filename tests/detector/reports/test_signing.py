"""Signing: the JSON round trip verifies, and every kind of tampering gets its own answer."""

import json
import os
import stat

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.exceptions import ImproperlyConfigured

from detector.reports import signing
from detector.reports.build import build_report

pytestmark = pytest.mark.django_db


@pytest.fixture
def report_json(finished):
    return build_report(finished).json_bytes


def test_a_report_as_json_verifies(report_json):
    answer = signing.verify_bytes(report_json)
    assert answer.outcome == signing.VALID, answer.message
    assert answer.report["analysis"]["verdict"] == "FAKE"


def test_changing_one_digit_of_the_score_is_detected(report_json):
    edited = report_json.replace(b'"fake_probability": 0.913', b'"fake_probability": 0.113', 1)
    assert edited != report_json
    assert signing.verify_bytes(edited).outcome == signing.ALTERED


def test_re_indenting_the_json_keeps_it_valid(report_json):
    # The signature covers the canonical form, not the file's whitespace.
    compact = json.dumps(json.loads(report_json)).encode()
    assert signing.verify_bytes(compact).outcome == signing.VALID


def test_a_report_re_signed_with_another_key_is_named_as_such(report_json):
    document = json.loads(report_json)
    document["report"]["analysis"]["verdict"] = "REAL"
    stranger = Ed25519PrivateKey.generate()
    raw = stranger.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    document["signature"].update(
        key_id=signing.key_id_of(raw),
        public_key=signing._b64(raw),
        value=signing._b64(stranger.sign(signing.canonical(document["report"]))),
    )
    answer = signing.verify_bytes(json.dumps(document).encode())
    assert answer.outcome == signing.UNKNOWN_KEY
    assert "another key" in answer.message


def test_a_truncated_report_is_called_truncated(report_json):
    assert signing.verify_bytes(report_json[: len(report_json) // 2]).outcome == signing.TRUNCATED


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello",
        b"\x89PNG\r\n\x1a\n\x00\x00",
        b'{"verdict": "REAL"}',
        b"[1, 2]",
        b"[" * 100_000,
        b"\xff\xfe",
    ],
    ids=["empty", "text", "png", "other-json", "list", "deep-nesting", "not-utf8"],
)
def test_a_file_that_is_not_a_report_is_called_so(data):
    assert signing.verify_bytes(data).outcome == signing.NOT_A_REPORT


def test_a_report_without_its_signature_is_altered(report_json):
    document = json.loads(report_json)
    del document["signature"]
    assert signing.verify_bytes(json.dumps(document).encode()).outcome == signing.ALTERED


def test_the_key_is_created_once_readable_by_the_service_only(settings):
    first = signing.current_key()
    path = settings.REPORT_SIGNING_KEY_DIR / signing.PRIVATE_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert signing.current_key().key_id == first.key_id
    assert not str(path).startswith(str(settings.MEDIA_ROOT))


def test_rotating_the_key_keeps_old_reports_verifiable(finished):
    old_report = build_report(finished).json_bytes
    old_key = signing.current_key()
    new_key = signing.rotate_key()
    assert new_key.key_id != old_key.key_id
    keys = {k["key_id"]: k for k in signing.published_keys()}
    assert keys[old_key.key_id]["valid_until"] is not None
    assert keys[new_key.key_id]["valid_until"] is None
    answer = signing.verify_bytes(old_report)
    assert answer.outcome == signing.VALID and "until" in answer.message
    assert json.loads(build_report(finished).json_bytes)["signature"]["key_id"] == new_key.key_id


def test_a_key_from_the_environment_signs_and_is_listed(settings, finished):
    key = Ed25519PrivateKey.generate()
    settings.REPORT_SIGNING_KEY = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    document = json.loads(build_report(finished).json_bytes)
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert document["signature"]["key_id"] == signing.key_id_of(raw)
    assert signing.key_id_of(raw) in {k["key_id"] for k in signing.published_keys()}
    assert not (settings.REPORT_SIGNING_KEY_DIR / signing.PRIVATE_FILE).exists()


def test_a_malformed_key_in_the_environment_stops_loudly(settings):
    settings.REPORT_SIGNING_KEY = "not a key"
    with pytest.raises(ImproperlyConfigured, match="REPORT_SIGNING_KEY"):
        signing.current_key()
