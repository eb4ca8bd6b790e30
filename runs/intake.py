"""Accepting events (`POST /e/{key}`, protocol.md §1.4): validate, store, start the runs they trigger.

Events are validated in request order; the first bad one stops the request, and the events
before it are still stored and reported, as Inngest does. Everything a request accepts is
written in one transaction, so an acknowledged event is committed; concurrent requests of a
process share that transaction (events/group_commit.py).

On PostgreSQL, events whose runs need nothing but their rows (no wait listening to their names,
no flow control at creation) are that transaction in one statement: the events, the runs'
event-id keys, the runs and their first calls, written only if, as it runs, no wait listens and
the triggers the process remembers for those names are still those in the database (a digest
of their rows). A name the process does not know is read first: its triggers and whether a wait
listens, in one read. Anything else goes through the ORM transaction below.
"""
from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from functools import lru_cache

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from core import metrics
from core.json_body import read_json_body
from events.group_commit import store_grouped, store_grouped_awaiting
from events.ids import EventIdSeed, new_event_id
from events.meta import EventMetaError, resolve_meta
from events.models import Event
from events.triggers import (
    NameTriggers, digest_sql, forget_triggers, functions_matching, match_functions, name_patterns, remember_triggers,
    remembered_triggers,
)
from functions.flow_config import flow_config_of
from functions.models import Function, Trigger
from runs.creation import RunRequest, create_runs, run_rows, starts_with_its_rows
from runs.flow_control.batches import batch_events
from runs.flow_control.debounces import debounce_event
from runs.pending_calls import enqueue_calls_on_commit
from runs.sql_batch import columns_of, fetch_rows, insert_select, instances_of, run_together
from runs.waits import awaited_sql, resume_waiting_runs

RESERVED_PREFIX = "inngest/"
# Events stored with their runs in one statement at most (a larger group, under load, shares
# the round trips of one transaction anyway).
MAX_EVENTS_TOGETHER = 16
_LISTENER_MODELS = (Trigger, Function)
_TRIGGERS, _FUNCTIONS = Trigger._meta.db_table, Function._meta.db_table
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


@dataclass
class PreparedEvents:
    """A request's events checked and ready to store: those accepted, in order, up to the first
    bad one, and what was wrong with that one."""
    events: list[Event]
    error: str | None = None


def prepare_events(body: bytes, seed_header: str | None = None) -> PreparedEvents:
    """Parse and validate a request's events. Pure CPU, no database: the ASGI route runs this
    on its event loop (inngest_project/event_route.py). Raises EventError for a body that is
    not events at all (bad JSON, too many)."""
    items = parse_body(body)
    seed = EventIdSeed.parse(seed_header)
    now_ms = int(time.time() * 1000)
    check_size = len(body) > settings.INNGEST_MAX_EVENT_BYTES
    prepared = PreparedEvents([])
    for index, raw in enumerate(items):
        try:
            event = validate_event(raw, new_event_id(seed, index), now_ms, check_size)
        except EventError as exc:
            prepared.error = str(exc)
            break
        event.has_unique_id = seed is None and event.event_id == event.internal_id
        prepared.events.append(event)
    return prepared


def ingest(body: bytes, seed_header: str | None = None) -> IngestResult:
    """Validate, store and trigger. The result carries the ids stored and the first error."""
    prepared = prepare_events(body, seed_header)
    store_grouped(prepared.events, store_events)
    return _stored(prepared)


async def ingest_awaiting(body: bytes, seed_header: str | None = None) -> IngestResult:
    """`ingest` for a coroutine on an event loop: validates on the loop, then awaits the group
    commit instead of blocking a thread on it."""
    prepared = prepare_events(body, seed_header)
    await store_grouped_awaiting(prepared.events, store_events)
    return _stored(prepared)


def _stored(prepared: PreparedEvents) -> IngestResult:
    """What a request answers once its accepted events are committed."""
    metrics.count("inngest_events_received", amount=len(prepared.events))
    return IngestResult(ids=[event.internal_id for event in prepared.events], error=prepared.error)


def store_events(events: list[Event], *, may_trigger: bool = True, may_resume: bool = True) -> None:
    """Insert the events and the runs they trigger in one transaction. A caller that knows no
    trigger (`may_trigger`) or no waiting run (`may_resume`) listens to these names skips that
    look-up (a run's end: runs/ending.py)."""
    if not events:
        return
    received_at = timezone.now()
    for event in events:
        event.received_at = received_at
    together = _store_together(events) if may_trigger and may_resume and _may_store_together(events) else None
    if together is not None and together.is_stored:
        return
    # Inside a run's transaction (a run's end) no savepoint: a failure here fails that transaction.
    with transaction.atomic(savepoint=False):
        if together is None or not _write_before_resuming(events, together):
            Event.objects.bulk_create(events)
            if together is not None and together.requests is not None:
                create_runs(_hold_debounced_and_batched(together.requests))
            elif may_trigger:
                start_triggered_runs(events)
        if may_resume:
            resume_waiting_runs(events)


@dataclass
class _Together:
    """What _store_together did: whether it stored the events; if not, the run requests the
    transaction may use (None: look them up) and the triggers they came from."""

    is_stored: bool
    requests: list[RunRequest] | None = None
    known: dict[str, NameTriggers] | None = None


def _write_before_resuming(events: list[Event], together: _Together) -> bool:
    """In the transaction that resumes the waits listening to these events: the events, their
    runs and first calls in one statement as _store_together writes them, if the triggers are
    still those of `together` (else nothing, and the requests are dropped: look them up)."""
    if together.requests is None or together.known is None:
        return False
    outcome = _write_together(events, sorted(together.known), together.known, together.requests, is_guarded=False)
    if outcome is None:
        return False
    if not outcome[1]:
        together.requests = None
        return False
    return True


def _may_store_together(events: list[Event]) -> bool:
    """Whether the events may go in one statement with their runs (PostgreSQL's data-modifying
    CTEs; SQLite, in-process, has no round trips to save), up to a size whose statement text
    stays small. System events (a run's end, which may resume an invoker) never do."""
    return (connection.vendor == "postgresql" and len(events) <= MAX_EVENTS_TOGETHER
            and not any(event.name.startswith(RESERVED_PREFIX) for event in events))


def _store_together(events: list[Event]) -> _Together:
    """Store the events, the runs they start and those runs' first calls in one statement (a
    transaction of its own outside one), when no wait listens to these names and the runs need
    nothing but their rows (runs/creation.py run_rows). The statement checks, as it writes, that
    the triggers it was built from are still those in the database. It is tried with the
    triggers the process remembers, if it knows every name; names it does not know, or triggers
    found stale, are read (their triggers, and whether a wait listens: one read) and the
    statement tried once more. Stale again: the process forgets them and the caller's
    transaction looks them up."""
    names = sorted({event.name for event in events})
    known = remembered_triggers(names)
    if len(known) == len(names):
        if not all(starts_with_its_rows(t.function) for entry in known.values() for t in entry.triggers):
            return _Together(False)  # the transaction creates them, after its own look-up (the copy is unchecked)
        together = _attempt_together(events, names, known)
        if together is not None:
            return together
        # stale: a sync since this process read them, so read them again
    known, is_awaited = _read_listeners(names)
    remember_triggers(known)
    if is_awaited:
        return _Together(False, _run_requests_of(events, known), known)
    together = _attempt_together(events, names, known)
    if together is None:  # changed again since the read: the transaction looks them up
        forget_triggers(names)
        return _Together(False)
    return together


def _attempt_together(events: list[Event], names: list[str], known: dict[str, NameTriggers]) -> _Together | None:
    """One try of _store_together's statement with the triggers of `known`: what it did, or None
    if those triggers were stale (nothing was written). A run that needs more than its rows
    sends nothing, and the transaction creates the runs of these requests."""
    requests = _run_requests_of(events, known)
    outcome = _write_together(events, names, known, requests)
    if outcome is None:
        return _Together(False, requests)
    is_unheard, is_current = outcome
    if not is_current:
        return None
    return _Together(is_unheard, requests, known)


def _run_requests_of(events: list[Event], known: dict[str, NameTriggers]) -> list[RunRequest]:
    triggers = list({trigger.id: trigger for entry in known.values() for trigger in entry.triggers}.values())
    return run_requests(events, functions_matching([event.as_payload() for event in events], triggers))


def _read_listeners(names: list[str]) -> tuple[dict[str, NameTriggers], bool]:
    """Each name's triggers (of active functions, each with its function) with their digest, and
    whether a wait listens to one of the names: both look-ups in one read."""
    awaited, params = awaited_sql(names)
    pattern_params, by_name = _pattern_params(names)
    rows = fetch_rows(_listeners_sql(tuple(pattern_params), tuple(map(tuple, by_name)), awaited), params | pattern_params)
    digests, triggers = rows[0][1:1 + len(names)], []
    for row in rows:
        if row[1 + len(names)] is None:
            continue  # the row that carries the rest when no trigger matches
        trigger, function = instances_of(_LISTENER_MODELS, row[1 + len(names):])
        trigger.function = function
        triggers.append(trigger)
    known = {}
    for name, digest in zip(names, digests):
        patterns = set(name_patterns(name))
        known[name] = NameTriggers(digest, [trigger for trigger in triggers if trigger.event_name in patterns])
    return known, bool(rows[0][0])


def _pattern_params(names: list[str]) -> tuple[dict[str, str], list[list[str]]]:
    """The patterns of these names as parameters, and each name's placeholders among them."""
    patterns = sorted({pattern for name in names for pattern in name_patterns(name)})
    index = {pattern: i for i, pattern in enumerate(patterns)}
    by_name = [[f"%(pattern{index[pattern]})s" for pattern in name_patterns(name)] for name in names]
    return {f"pattern{i}": pattern for i, pattern in enumerate(patterns)}, by_name


@lru_cache(maxsize=256)
def _listeners_sql(pattern_names: tuple[str, ...], by_name: tuple[tuple[str, ...], ...], awaited: str) -> str:
    patterns = ", ".join(f"%({name})s" for name in pattern_names)
    digests = ", ".join(digest_sql(list(placeholders)) for placeholders in by_name)
    return (f"SELECT {awaited}, {digests}, {columns_of(_LISTENER_MODELS)} FROM (SELECT 1) AS one LEFT JOIN "
            f"({_TRIGGERS} JOIN {_FUNCTIONS} ON {_FUNCTIONS}.id = {_TRIGGERS}.function_id AND NOT {_FUNCTIONS}.is_archived) "
            f"ON {_TRIGGERS}.event_name IN ({patterns})")


def _write_together(events: list[Event], names: list[str], known: dict[str, NameTriggers],
                    requests: list[RunRequest], is_guarded: bool = True) -> tuple[bool, bool] | None:
    """The statement of _store_together: it writes only if no wait listens to the names (unless
    not `is_guarded`: the caller resumes them in its transaction) and their triggers' digests are
    those of `known` (is_unheard, is_current). None: a run needs more than its rows, nothing was sent."""
    ctes = {id(event): f"e{i}" for i, event in enumerate(events)}
    runs = run_rows(requests, lambda event: ctes[id(event)], timezone.now())
    if runs is None:
        return None
    awaited, params = awaited_sql(names)
    pattern_params, by_name = _pattern_params(names)
    params |= pattern_params | {f"digest{i}": known[name].digest for i, name in enumerate(names)}
    is_current = " AND ".join(f"{digest_sql(placeholders)} = %(digest{i})s" for i, placeholders in enumerate(by_name))
    statements = [f"guard AS (SELECT {f'NOT {awaited}' if is_guarded else 'true'} AS is_unheard, {is_current} AS is_current)"]
    for i, event in enumerate(events):
        sql, event_params = insert_select(event, f"e{i}", "FROM guard WHERE is_unheard AND is_current RETURNING id")
        statements.append(f"e{i} AS ({sql})")
        params |= event_params
    calls = " UNION ALL ".join(f"SELECT id FROM {name}" for name in runs.call_ctes) or "SELECT NULL::bigint WHERE false"
    is_unheard, is_current, call_ids = run_together(
        [], params | runs.params, f"WITH {', '.join(statements + runs.ctes)} SELECT is_unheard, is_current, ARRAY({calls}) FROM guard")
    if is_unheard and is_current:
        enqueue_calls_on_commit(call_ids)
    return is_unheard, is_current


def event_rows_sql(events: list[Event], condition: str) -> tuple[list[str], dict[str, Any]]:
    """The rows store_events inserts, for events nobody listens to, as statements to send in
    another message (a run's end, runs/ending.py): each row is inserted only if `condition`
    holds then. The values are those the ORM would write."""
    received_at = timezone.now()
    statements, params = [], {}
    for i, event in enumerate(events):
        event.received_at = received_at
        sql, event_params = insert_select(event, f"e{i}", f"WHERE {condition}")
        statements.append(sql)
        params |= event_params
    return statements, params


def start_triggered_runs(events: list[Event]) -> None:
    payloads = [event.as_payload() for event in events]
    create_runs(_hold_debounced_and_batched(run_requests(events, match_functions(payloads))))


def run_requests(events: list[Event], matched: list[list[Function]]) -> list[RunRequest]:
    """A run request per (event, function it triggers); `matched` is each event's functions."""
    return [
        RunRequest(function=function, event=event, events=[event.as_payload()],
                   idempotency_key="" if event.has_unique_id else event.event_id)
        for event, functions in zip(events, matched)
        for function in functions
    ]


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
