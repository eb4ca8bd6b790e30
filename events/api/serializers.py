"""How events look in the REST API (§1.10)."""
from __future__ import annotations

from events.models import Event

ACCOUNT_ID = "00000000-0000-4000-a000-000000000000"
ENVIRONMENT_ID = "00000000-0000-4000-b000-000000000000"


def event_json(event: Event) -> dict:
    return {
        "internal_id": event.internal_id,
        "account_id": ACCOUNT_ID,
        "environment_id": ENVIRONMENT_ID,
        "source": "",
        "source_id": None,
        "received_at": event.received_at.isoformat(),
        "id": event.event_id,
        "name": event.name,
        "data": event.data,
        "user": event.user,
        "ts": event.ts,
        "v": event.v or None,
    }
