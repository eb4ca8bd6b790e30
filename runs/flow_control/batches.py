"""Event batching (protocol.md §6.6): one run for up to `maxSize` events, or what came within `timeout`.

Events collect in an EventBatch row per (function, evaluated key). A batch that reaches
`maxSize` starts its run in the transaction that filled it; a batch that times out is started
by the timer tick. Events for which `batchEvents.if` is false run on their own at once.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from ulid import ULID

from functions.expression_failures import expression_holds
from functions.flow_config import BatchSpec
from runs import pending_calls
from runs.creation import RunRequest, start_due_held_runs
from runs.flow_control.gates import digest, evaluate_key
from runs.models import EventBatch


def batch_events(requests: list[RunRequest], spec: BatchSpec, now: datetime) -> list[RunRequest]:
    """Add the requests' events to their batches. Returns the runs to start now: full batches,
    and events that `batchEvents.if` keeps out of batching."""
    ready: list[RunRequest] = []
    groups: dict[str, list[RunRequest]] = defaultdict(list)
    for request in requests:
        payload = request.events[0]
        if spec.condition and not expression_holds(spec.condition, request.function.id, "batchEvents.if", payload):
            ready.append(request)
            continue
        key = evaluate_key(spec.key, payload, request.function.id, "batchEvents.key") if spec.key else ""
        groups[digest(key)].append(request)
    for key, members in groups.items():
        ready.extend(_add_to_batch(key, members, spec, now))
    return ready


def _add_to_batch(key: str, members: list[RunRequest], spec: BatchSpec, now: datetime) -> list[RunRequest]:
    function = members[0].function
    batch = _open_batch(function, key, members[0], spec, now)
    full: list[RunRequest] = []
    for request in members:
        if batch is None:
            batch = _new_batch(function, key, request, spec, now)
        batch.payloads.append(request.events[0])
        # Capped here too: a function synced before the cap (or before it was lowered) keeps batching.
        if len(batch.payloads) >= min(spec.max_size, settings.INNGEST_MAX_BATCH_SIZE):
            full.append(_run_request(batch, function, "full"))
            batch.delete()
            batch = None
    if batch is not None:
        batch.save()
        pending_calls.tick_at_on_commit(batch.due_at)
    return full


def _open_batch(function, key: str, first: RunRequest, spec: BatchSpec, now: datetime) -> EventBatch:
    """The key's open batch, locked; a new one if there is none."""
    for _ in range(2):
        batch = EventBatch.objects.select_for_update().filter(function=function, key=key).first()
        if batch is not None:
            return batch
        try:
            with transaction.atomic():
                batch = _new_batch(function, key, first, spec, now)
                batch.save(force_insert=True)
            return batch
        except IntegrityError:
            continue  # another request opened it meanwhile: add to theirs
    return EventBatch.objects.select_for_update().get(function=function, key=key)


def _new_batch(function, key: str, first: RunRequest, spec: BatchSpec, now: datetime) -> EventBatch:
    return EventBatch(id=str(ULID()), function=function, key=key, first_event=first.event, payloads=[],
                      opened_at=now, due_at=now + spec.timeout)


def _run_request(batch: EventBatch, function, why: str) -> RunRequest:
    reason = f"batch: {len(batch.payloads)} events, {why}"
    return RunRequest(function, batch.first_event, list(batch.payloads), f"batch-{batch.id}", delay_reason=reason)


def start_due_batches(now: datetime | None = None) -> int:
    """Start the runs of batches whose timeout has passed. Returns how many started."""
    return start_due_held_runs(EventBatch, "first_event", now or timezone.now(),
                               lambda batch: _run_request(batch, batch.function, "timed out") if batch.payloads else None,
                               part="start_due_batches")
