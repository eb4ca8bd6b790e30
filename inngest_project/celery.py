"""The Celery app and its code-defined beat schedule. Tasks live in each Django app's tasks.py."""
from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.schedules import crontab
from celery.signals import import_modules, task_postrun
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections

from inngest_project.security import refuse_insecure_production

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inngest_project.settings")

app = Celery("inngest_project")
app.autodiscover_tasks()


@app.on_configure.connect
def read_settings_once(sender: Celery, **kwargs: Any) -> None:
    """Celery's settings are Django's CELERY_* settings, copied into a plain dict when Celery
    first reads its configuration. Celery looks its settings up again on every task it sends
    (routes, serializer, ...); through Django's lazy settings object with the CELERY_ namespace,
    each look-up tried several names and failed over to the next with an exception, two fifths of
    the CPU of sending a task. Nothing changes CELERY_* settings after start. Celery's Django
    fixup reads CELERY_DB_REUSE_MAX by that name: it is there under it too."""
    config = {name.removeprefix("CELERY_").lower(): getattr(settings, name) for name in dir(settings) if name.startswith("CELERY_")}
    sender.config_from_object(config | {"CELERY_DB_REUSE_MAX": settings.CELERY_DB_REUSE_MAX})

app.conf.beat_schedule = {
    # The database is the record of every pending call; this tick re-sends the ones whose
    # broker message was lost (Redis restart) or whose worker died holding them.
    # django-celery-beat stores intervals in whole seconds (0.5 would become 0 and spin), so
    # beat ticks at most once a second; the dev-mode timer loop may tick faster.
    # (The entry keeps its first name: beat stores entries by name, and a new one would run beside it.)
    "sweep-due-calls": {
        "task": "executor.tick_timers",
        "schedule": max(1.0, round(float(os.environ.get("INNGEST_SWEEP_SECONDS") or 1.0))),
    },
    # Run history past INNGEST_RUN_RETENTION_DAYS (0 keeps everything), once a day at 03:00 UTC.
    "prune-run-history": {"task": "runs.prune_history", "schedule": crontab(hour=3, minute=0)},
    # Active runs with nothing pending and nothing to wait for: a safety net, every 5 minutes.
    "requeue-stuck-runs": {"task": "runs.requeue_stuck_runs", "schedule": 300.0},
}


@import_modules.connect
def refuse_to_start_open(**kwargs: Any) -> None:
    """`celery worker` and `celery beat` run no system checks: an open production stops here, as
    either initialises, before beat's scheduler reads the database. SystemExit, because celery
    logs and swallows the exceptions of signal handlers."""
    try:
        refuse_insecure_production()
    except ImproperlyConfigured as exc:
        raise SystemExit(f"refusing to start: {exc}") from None


@task_postrun.connect
def drop_broken_connections(**kwargs: Any) -> None:
    """After a task that met a database error (PostgreSQL restarted), drop this worker's
    connection if it no longer works: CELERY_DB_REUSE_MAX keeps Celery from closing connections
    between tasks, and without this every later task of the process fails on the dead one. (The
    timer tick, whose transactions close a connection they cannot roll back, used to heal the
    call workers as a side effect; it runs on a worker of its own now.) A connection without
    errors is left alone: no extra query per task."""
    for conn in connections.all(initialized_only=True):
        if conn.errors_occurred and not conn.in_atomic_block:
            conn.close_if_unusable_or_obsolete()
