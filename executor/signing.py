"""Signing keys (protocol.md §1.2, §3.3): signing the calls to apps, checking their signed answers,
and checking the bearer tokens SDKs present to the server's own APIs.

A key may carry a `signkey-<env>-` prefix; it is never part of what is hashed or compared. The
fallback key (INNGEST_SIGNING_KEY_FALLBACK) is accepted wherever the key is, so keys can be
rotated without downtime: give apps the new key with the old one as their fallback, then the
server, then drop the fallback.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import time
from urllib.parse import parse_qs

from django.conf import settings

_PREFIX = re.compile(r"^signkey-\w+-")


def strip_prefix(key: str) -> str:
    return _PREFIX.sub("", key)


def configured_keys() -> list[str]:
    """The signing key and its fallback, without prefixes; empty when signing is off (dev)."""
    return [strip_prefix(k) for k in (settings.INNGEST_SIGNING_KEY, settings.INNGEST_SIGNING_KEY_FALLBACK) if k]


def signature(body: bytes, key: str, timestamp: int | None = None) -> str:
    """`t=<unix seconds>&s=<hex HMAC-SHA256(key, body || t)>`, the key used as text, not hex-decoded."""
    moment = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(strip_prefix(key).encode(), body, hashlib.sha256)
    mac.update(str(moment).encode())
    return f"t={moment}&s={mac.hexdigest()}"


def is_valid_signature(body: bytes, header: str, keys: list[str]) -> bool:
    """Whether `header` signs `body` with one of `keys` (an app's signed answer)."""
    fields = parse_qs(header or "")
    given, moment = (fields.get("s") or [""])[0], (fields.get("t") or [""])[0]
    # isascii: str.isdigit() also takes digits int() refuses, such as '²', and compare_digest
    # raises on non-ASCII text.
    if not given or not given.isascii() or not (moment.isascii() and moment.isdigit()):
        return False
    return any(hmac.compare_digest(signature(body, key, int(moment)), f"t={moment}&s={given}") for key in keys)


def hashed(key: str) -> str:
    """What SDKs send as their bearer token: hex(sha256(hex-decoded key))."""
    return hashlib.sha256(bytes.fromhex(strip_prefix(key))).hexdigest()


def is_authorized(authorization: str, keys: list[str]) -> bool:
    """A `Bearer` header carrying one of the keys, or its hash, with or without a prefix."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return False
    token = strip_prefix(token.strip())
    if not token.isascii():
        return False  # keys are hex; compare_digest raises on non-ASCII text
    return any(hmac.compare_digest(token, key) or hmac.compare_digest(token, hashed(key)) for key in keys)


def check_key(name: str, key: str) -> str:
    """A configured key must be even-length hex once its prefix is removed (as Inngest requires)."""
    raw = strip_prefix(key)
    try:
        bytes.fromhex(raw)
    except ValueError:
        return f"{name} must be a hex string of even length (with or without a signkey-<env>- prefix)"
    return "" if raw else f"{name} is empty"
