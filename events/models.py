"""Events as received by `/e/{key}`: one row per delivered event, with its internal ULID."""
from __future__ import annotations

from django.db import models
from django.utils import timezone

from core.json_text import JSONTextField


class Event(models.Model):
    # Not the primary key: an SDK that resends a request with the same
    # x-inngest-event-id-seed gets the same internal ids, and every delivery is kept.
    internal_id = models.CharField(max_length=26)  # GET /v1/events/{internal_id}: event_internal_id
    name = models.CharField(max_length=255)
    # The user's idempotency id (or the internal id when none was given): the run dedupe key.
    event_id = models.CharField(max_length=255)
    # JSON as text (core/json_text.py): a run's result travels in `inngest/function.finished`.
    data = JSONTextField(default=dict)
    user = JSONTextField(default=dict)
    ts = models.BigIntegerField()
    v = models.CharField(max_length=255, blank=True, default="")
    # `{"sessions": {...}}` as resolved at ingest (events/meta.py); null when the event had none.
    meta = JSONTextField(null=True, blank=True)
    received_at = models.DateTimeField(default=timezone.now)

    # Not stored. True when `event_id` is a ULID this server has just minted at random (no user
    # id, no id seed): no other event can carry it, so its runs need no idempotency key claimed.
    has_unique_id = False

    class Meta:
        indexes = [
            # GET /v1/events?name=… newest first (internal ids are time-ordered ULIDs), and the
            # event stream's and runs list's `app/*` filters (events/queries.py): the pattern
            # operator class lets PostgreSQL turn LIKE 'app/%' into an index range whatever the
            # database's collation, and still serves the exact name (a rare prefix among 300,000
            # events: 25 ms as a scan, 0.05 ms on this index).
            models.Index(fields=["name", "-internal_id"], name="event_name_newest",
                         opclasses=["varchar_pattern_ops", "varchar_ops"]),
            # Admin and REST time-range listings.
            models.Index(fields=["-received_at"], name="event_received_newest"),
            models.Index(fields=["internal_id"], name="event_internal_id"),  # equality only: no pattern index
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.internal_id})"

    def as_payload(self) -> dict:
        """The event as the SDK sees it in a call request."""
        payload = {"name": self.name, "data": self.data, "user": self.user, "id": self.event_id, "ts": self.ts}
        if self.v:
            payload["v"] = self.v
        if self.meta:
            payload["meta"] = self.meta
        return payload


class EventKey(models.Model):
    """A key apps send events with (`POST /e/{key}`). Only its SHA-256 is stored."""

    name = models.CharField(max_length=255)
    key_hash = models.CharField(max_length=64, unique=True)  # /e/ looks keys up by hash
    hint = models.CharField(max_length=12)  # the key's first characters, to tell keys apart in lists
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.hint}…)"
