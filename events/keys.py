"""Event keys: created, listed and revoked by operators, checked on every `POST /e/{key}` in
production. A key is shown once, at creation; the database keeps only its SHA-256. Keys given
in INNGEST_EVENT_KEY (`start --event-key`, as `inngest start` takes them) are accepted beside them."""
from __future__ import annotations

import hashlib
import hmac
import secrets

from django.conf import settings
from django.utils import timezone

from events.models import EventKey


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(name: str, key: str = "") -> tuple[EventKey, str]:
    """A new key (random unless given, e.g. to keep one an app already uses) and its row."""
    key = key or secrets.token_hex(32)
    row = EventKey.objects.create(name=name, key_hash=_digest(key), hint=key[:8])
    return row, key


def revoke_key(hint_or_name: str) -> int:
    """Revoke the active keys whose hint or name matches; returns how many."""
    active = EventKey.objects.filter(revoked_at__isnull=True)
    matches = active.filter(hint=hint_or_name) | active.filter(name=hint_or_name)
    return matches.update(revoked_at=timezone.now())


def is_accepted(key: str) -> bool:
    """Dev mode takes any key; production only an active one."""
    if is_accepted_as_configured(key):
        return True
    return settings.INNGEST_REQUIRE_EVENT_KEYS and EventKey.objects.filter(key_hash=_digest(key), revoked_at__isnull=True).exists()


def is_accepted_as_configured(key: str) -> bool:
    """Accepted without looking in the database: any key in dev mode, a key of INNGEST_EVENT_KEY."""
    if not settings.INNGEST_REQUIRE_EVENT_KEYS:
        return bool(key)
    return any(hmac.compare_digest(key.encode(errors="surrogatepass"), configured.encode()) for configured in settings.INNGEST_EVENT_KEYS)
