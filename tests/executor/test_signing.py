"""Signing keys: signatures, answers' signatures, bearer tokens, key validation."""
from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest

from executor.signing import check_key, hashed, is_authorized, is_valid_signature, signature
from tests.stacks import MANAGE, ROOT

KEY = "signkey-prod-" + "0f" * 32
RAW = "0f" * 32


def test_a_signature_is_hmac_of_body_and_time_with_the_key_as_text() -> None:
    import hmac

    expected = hmac.new(RAW.encode(), b'{"a":1}' + b"1700000000", hashlib.sha256).hexdigest()
    assert signature(b'{"a":1}', KEY, 1700000000) == f"t=1700000000&s={expected}"
    assert signature(b'{"a":1}', RAW, 1700000000) == signature(b'{"a":1}', KEY, 1700000000)  # prefix ignored


def test_an_answer_signed_with_either_key_verifies_and_anything_else_does_not() -> None:
    old = "ab" * 32
    body = b'{"data":1}'
    assert is_valid_signature(body, signature(body, old), [RAW, old])
    assert not is_valid_signature(body + b" ", signature(body, RAW), [RAW, old])
    assert not is_valid_signature(body, signature(body, "cd" * 32), [RAW, old])
    assert not is_valid_signature(body, "t=abc&s=zz", [RAW])


@pytest.mark.parametrize(("header", "ok"), [
    (f"Bearer {KEY}", True), (f"Bearer {RAW}", True), (f"Bearer signkey-prod-{hashed(RAW)}", True),
    (f"bearer {hashed(RAW)}", True), (f"Bearer {hashed('ab' * 32)}", False), ("Basic abc", False), ("", False),
    (f"Bearer signkey-test-{hashed(RAW)}", True), ("Bearer clé", False), ("Bearer " + "é" * 64, False),
])
def test_bearer_tokens_carry_the_key_or_its_hash(header: str, ok: bool) -> None:
    assert is_authorized(header, [RAW]) is ok


@pytest.mark.parametrize(("key", "problem"), [
    (KEY, ""), ("abc", "hex string of even length"), ("signkey-prod-zz", "hex string of even length"), ("signkey-prod-", "is empty"),
])
def test_configured_keys_must_be_even_length_hex(key: str, problem: str) -> None:
    assert (problem in check_key("INNGEST_SIGNING_KEY", key)) if problem else check_key("INNGEST_SIGNING_KEY", key) == ""


def test_a_bad_signing_key_stops_the_server_at_start_with_a_clear_error() -> None:
    done = subprocess.run([sys.executable, MANAGE, "check"], cwd=ROOT, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "INNGEST_SIGNING_KEY": "signkey-prod-xyz"})
    assert done.returncode != 0
    assert "INNGEST_SIGNING_KEY must be a hex string of even length" in done.stderr
