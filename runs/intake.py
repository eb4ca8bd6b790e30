"""Accepting events (`POST /e/{key}`, protocol.md §1.4): validate, store, start the runs they trigger.

Events are validated in request order; the first bad one stops the request, and the events
before it are still stored and reported, as Inngest does. Everything a request accepts is
written in one transaction, so an acknowledged event is committed; concurrent requests of a
process share that transaction (events/group_commit.py).
"""
from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from core import metrics
from core.json_body import read_json_body
from events.group_commit import store_grouped
from events.ids import EventIdSeed, new_event_id
from events.meta import EventMetaError, resolve_meta
from events.models import Event
from events.triggers import match_functions
from functions.flow_config import flow_config_of
from runs.creation import RunRequest, create_runs
from runs.flow_control.batches import batch_events
from runs.flow_control.debounces import debounce_event
from runs.waits import resume_waiting_runs

RESERVED_PREFIX = "inngest/"
MIN_TS_MS = 315532800000  # 1980-01-01
MAX_TS_MS = 4102444800000  # 2100-01-01


class EventError(ValueError):
    pass


@dataclass
class IngestResult:
    ids: list[str] = field(default_factory=list)
    error: str | None = None


def parse_body(body: bytes) -> list[Any]:
    """The request body as a list of raw events."""
    try:
        parsed = read_json_body(body)
    except ValueError as exc:
        raise EventError(f"Unable to parse event body as JSON: {exc}") from None
    items = parsed if isinstance(parsed, list) else [parsed]
    if len(items) > settings.INNGEST_MAX_EVENTS_PER_REQUEST:
        raise EventError(f"Too many events in one request: {len(items)} > {settings.INNGEST_MAX_EVENTS_PER_REQUEST}")
    return items


def validate_event(raw: Any, internal_id: str, now_ms: int, check_size: bool) -> Event:
    """One raw event as a row to store; raises EventError saying what is wrong with it."""
    if not isinstance(raw, dict):
        raise EventError("Each event must be a JSON object")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise EventError("Event name is empty")
    if name.lower().startswith(RESERVED_PREFIX):
        raise EventError(f"Event name is reserved for internal use: {name}")
    if len(name) > 255:
        raise EventError("Event name is longer than 255 characters")
    if check_size and len(json.dumps(raw)) > settings.INNGEST_MAX_EVENT_BYTES:
        raise EventError(f"Event is larger than the limit of {settings.INNGEST_MAX_EVENT_BYTES} bytes")
    return Event(
        internal_id=internal_id, name=name, event_id=_user_id(raw) or internal_id,
        data=_data(raw), user=_object_field(raw, "user"), ts=_timestamp(raw, now_ms), v=_version(raw),
        meta=_meta(raw),
    )


def _meta(raw: dict) -> dict | None:
    try:
        return resolve_meta(raw.get("meta"))
    except EventMetaError as exc:
        raise EventError(str(exc)) from None


def _data(raw: dict) -> dict:
    data = _object_field(raw, "data")
    data.pop("_inngest", None)  # reserved for the server's own metadata
    return data


def _object_field(raw: dict, key: str) -> dict:
    value = raw.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise EventError(f"Event {key} must be an object")
    return value


def _user_id(raw: dict) -> str:
    value = raw.get("id")
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        raise EventError("Event id must be a string")
    if len(value) > 255:
        raise EventError("Event id is longer than 255 characters")
    return value


def _timestamp(raw: dict, now_ms: int) -> int:
    value = raw.get("ts")
    if value in (None, 0):
        return now_ms
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise EventError("Event ts must be a unix timestamp in milliseconds")
    if not MIN_TS_MS <= value <= MAX_TS_MS:
        raise EventError("Event ts must be between 1980-01-01 and 2100-01-01 (unix milliseconds)")
    return int(value)


def _version(raw: dict) -> str:
    value = raw.get("v")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise EventError("Event v must be a string")
    return value[:255]


def ingest(body: bytes, seed_header: str | None = None) -> IngestResult:
    """Validate, store and trigger. The result carries the ids stored and the first error."""
    result = IngestResult()
    items = parse_body(body)
    seed = EventIdSeed.parse(seed_header)
    now_ms = int(time.time() * 1000)
    check_size = len(body) > settings.INNGEST_MAX_EVENT_BYTES
    accepted: list[Event] = []
    for index, raw in enumerate(items):
        try:
            event = validate_event(raw, new_event_id(seed, index), now_ms, check_size)
            event.has_unique_id = seed is None and event.event_id == event.internal_id
            accepted.append(event)
        except EventError as exc:
            result.error = str(exc)
            break
    store_grouped(accepted, store_events)
    metrics.count("inngest_events_received", amount=len(accepted))
    result.ids = [event.internal_id for event in accepted]
    return result


def store_events(events: list[Event], *, may_trigger: bool = True, may_resume: bool = True) -> None:
    """Insert the events and the runs they trigger in one transaction. A caller that knows no
    trigger (`may_trigger`) or no waiting run (`may_resume`) listens to these names skips that
    look-up (a run's end: runs/ending.py)."""
    if not events:
        return
    received_at = timezone.now()
    for event in events:
        event.received_at = received_at
    # Inside a run's transaction (a run's end) no savepoint: a failure here fails that transaction.
    with transaction.atomic(savepoint=False):
        Event.objects.bulk_create(events)
        if may_trigger:
            start_triggered_runs(events)
        if may_resume:
            resume_waiting_runs(events)


def event_rows_sql(events: list[Event], condition: str) -> tuple[list[str], dict[str, Any]]:
    """The rows store_events inserts, for events nobody listens to, as statements to send in
    another message (a run's end, runs/ending.py): each row is inserted only if `condition`
    holds then. The values are those the ORM would write."""
    received_at = timezone.now()
    fields = [f for f in Event._meta.concrete_fields if not f.primary_key]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    statements, params = [], {}
    for i, event in enumerate(events):
        event.received_at = received_at
        values = ", ".join(f"%(e{i}_{f.column})s" for f in fields)
        statements.append(f"INSERT INTO {Event._meta.db_table} ({columns}) SELECT {values} WHERE {condition}")
        params |= {f"e{i}_{f.column}": f.get_db_prep_save(getattr(event, f.attname), connection) for f in fields}
    return statements, params


def start_triggered_runs(events: list[Event]) -> None:
    payloads = [event.as_payload() for event in events]
    requests = [
        RunRequest(function=function, event=event, events=[payload], idempotency_key="" if event.has_unique_id else event.event_id)
        for event, payload, functions in zip(events, payloads, match_functions(payloads))
        for function in functions
    ]
    create_runs(_hold_debounced_and_batched(requests))


def _hold_debounced_and_batched(requests: list[RunRequest]) -> list[RunRequest]:
    """Requests for debounced or batched functions wait in their rows; the rest start now."""
    ready: list[RunRequest] = []
    held: dict[Any, list[RunRequest]] = defaultdict(list)
    for request in requests:
        if flow_config_of(request.function).is_deferred:
            held[request.function.id].append(request)
        else:
            ready.append(request)
    now = timezone.now()
    for group in held.values():
        flow = flow_config_of(group[0].function)
        if flow.batch is not None:
            ready.extend(batch_events(group, flow.batch, now))
        else:
            for request in group:
                debounce_event(request, flow.debounce, now)
    return ready
