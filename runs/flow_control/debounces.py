"""Debounce (protocol.md §6.5): one run per key with the last event, once events stop coming.

The pending run is a Debounce row: the latest event and the time it starts. A new event for
the key replaces the event and pushes the start out by `period`, never past `timeout` after the
first event. The timer tick turns due rows into runs. The row lock (or SQLite's single writer)
decides between an event arriving and the tick firing: either the event pushes the start out,
or the run starts and the event opens a new debounce.
"""
from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone
from ulid import ULID

from functions.flow_config import DebounceSpec
from runs import pending_calls
from runs.creation import RunRequest, start_due_held_runs
from runs.flow_control.gates import digest, evaluate_key
from runs.models import Debounce


def debounce_event(request: RunRequest, spec: DebounceSpec, now: datetime) -> None:
    """Hold the event as the key's latest; its run starts when the key has been quiet for `period`."""
    payload = request.events[0]
    key = digest(evaluate_key(spec.key, payload, request.function.id, "debounce.key") if spec.key else "")
    for _ in range(2):
        row = Debounce.objects.select_for_update().filter(function=request.function, key=key).first()
        if row is not None:
            row.event, row.payload = request.event, payload
            row.due_at = _due_at(spec, row.first_at, now)
            row.save(update_fields=["event", "payload", "due_at"])
            break
        try:
            with transaction.atomic():
                row = Debounce.objects.create(
                    id=str(ULID()), function=request.function, key=key, event=request.event, payload=payload,
                    first_at=now, due_at=_due_at(spec, now, now),
                )
            break
        except IntegrityError:
            continue  # another request opened it meanwhile: update theirs
    if row is not None:
        pending_calls.tick_at_on_commit(row.due_at)


def _due_at(spec: DebounceSpec, first_at: datetime, now: datetime) -> datetime:
    due_at = now + spec.period
    if spec.timeout is not None:
        due_at = min(due_at, first_at + spec.timeout)
    return due_at


def _seconds(start: datetime, end: datetime) -> str:
    return f"{(end - start).total_seconds():.1f}s"


def start_due_debounces(now: datetime | None = None) -> int:
    """Start the runs of debounces whose quiet period is over. Returns how many started."""
    now = now or timezone.now()
    return start_due_held_runs(Debounce, "event", now, lambda row: RunRequest(
        row.function, row.event, [row.payload], f"debounce-{row.id}",
        delay_reason=f"debounce: started with the last event, {_seconds(row.first_at, now)} after the first",
    ), part="start_due_debounces")
