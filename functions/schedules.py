"""Cron triggers (protocol.md §2, §5.5): django-celery-beat periodic tasks, kept in step with syncs.

Each cron trigger of an active function is one PeriodicTask that beat (or the dev server's
embedded beat) fires: the task `runs.cron_tick` (runs/cron_runs.py starts the run; the registry
only keeps the schedules). Schedules live in the database: they survive restarts without a re-sync.
"""
from __future__ import annotations

import json
import zoneinfo

from django_celery_beat.models import CrontabSchedule, PeriodicTask

from functions.cron import parse_cron
from functions.models import Function

TASK_NAME = "runs.cron_tick"  # sent by name: the registry does not start runs


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


def remove_cron_schedules(function_ids: list) -> None:
    for function_id in function_ids:
        PeriodicTask.objects.filter(name__startswith=f"cron:{function_id}:").delete()
