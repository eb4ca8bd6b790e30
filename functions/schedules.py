"""Cron triggers (protocol.md §2, §5.5): django-celery-beat periodic tasks, kept in step with syncs.

Each cron trigger of an active function is one PeriodicTask that beat (or the dev server's
embedded beat) fires. A tick stores an `inngest/scheduled.timer` event and starts the run with
the tick's time as its idempotency key, so a tick starts exactly one run even when two beats
run by mistake. Schedules live in the database: they survive restarts without a re-sync.
"""
from __future__ import annotations

import json
import time
import zoneinfo
from datetime import datetime, timezone

from django.db import transaction
from django.utils import timezone as dj_timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask
from ulid import ULID

from events.models import Event
from functions.cron import parse_cron
from functions.models import Function
from runs.creation import RunRequest, create_runs

TASK_NAME = "functions.fire_cron"
TIMER_EVENT = "inngest/scheduled.timer"


def sync_cron_schedules(function: Function) -> None:
    """Make the function's periodic tasks match its cron triggers (none when it is archived)."""
    wanted = [] if function.is_archived else [t.cron for t in function.triggers.all() if t.cron]
    prefix = f"cron:{function.id}:"
    PeriodicTask.objects.filter(name__startswith=prefix).exclude(name__in=[prefix + c for c in wanted]).delete()
    for expression in wanted:
        cron = parse_cron(expression)
        schedule, _ = CrontabSchedule.objects.get_or_create(
            minute=cron.minute, hour=cron.hour, day_of_month=cron.day_of_month, month_of_year=cron.month_of_year,
            day_of_week=cron.day_of_week, timezone=zoneinfo.ZoneInfo(cron.zone),
        )
        PeriodicTask.objects.update_or_create(
            name=(prefix + expression)[:200],
            defaults={"task": TASK_NAME, "crontab": schedule, "interval": None,
                      "args": json.dumps([str(function.id), expression]), "enabled": True},
        )


def skip_missed_cron_ticks() -> int:
    """Mark every cron schedule as run now, so beat's first look finds nothing overdue and the
    next tick is the next one on the clock (Inngest does not catch up ticks missed while down)."""
    return PeriodicTask.objects.filter(task=TASK_NAME, enabled=True).update(last_run_at=dj_timezone.now())


def remove_cron_schedules(function_ids: list) -> None:
    for function_id in function_ids:
        PeriodicTask.objects.filter(name__startswith=f"cron:{function_id}:").delete()


def fire_cron(function_id: str, expression: str, now: datetime | None = None) -> bool:
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
