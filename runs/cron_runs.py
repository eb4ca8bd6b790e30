"""Cron ticks start runs (protocol.md §2, §5.5). functions/schedules.py keeps one beat
PeriodicTask per cron trigger; each tick stores an `inngest/scheduled.timer` event and starts the
run with the tick's time as its idempotency key, so a tick starts exactly one run even when two
beats run by mistake.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone

from django.db import transaction
from ulid import ULID

from events.models import Event
from functions.models import Function
from runs.creation import RunRequest, create_runs

TIMER_EVENT = "inngest/scheduled.timer"


def start_cron_run(function_id: str, expression: str, now: datetime | None = None) -> bool:
    """One tick: the timer event and the function's run for the current minute. False if not due."""
    function = Function.objects.filter(id=function_id, is_archived=False).first()
    if function is None or not function.triggers.filter(cron=expression).exists():
        return False
    scheduled_at = (now or datetime.now(timezone.utc)).replace(second=0, microsecond=0)
    stamp = scheduled_at.isoformat().replace("+00:00", "Z")
    data = {"cron": expression, "scheduledAt": stamp, "fireAt": stamp}
    with transaction.atomic():
        event = Event.objects.create(internal_id=str(ULID()), name=TIMER_EVENT, event_id=stamp, data=data,
                                     ts=int(time.time() * 1000))
        # The tick's time is the idempotency key: a second beat firing the same tick starts nothing.
        runs = create_runs([RunRequest(function, event, [event.as_payload()], f"cron:{expression}:{stamp}")])
    return bool(runs)
