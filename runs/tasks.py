"""Celery entry points of runs: history upkeep (scheduled in inngest_project/celery.py) and cron ticks."""
from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from runs import cron_runs, maintenance

log = logging.getLogger(__name__)


@shared_task(name="runs.prune_history", acks_late=True, ignore_result=True)
def prune_history() -> None:
    if settings.INNGEST_RUN_RETENTION_DAYS > 0:
        result = maintenance.prune(timezone.now() - timedelta(days=settings.INNGEST_RUN_RETENTION_DAYS))
        log.info("pruned %d runs, %d events, %d idempotency keys", result.runs, result.events, result.keys)


@shared_task(name="runs.requeue_stuck_runs", acks_late=True, ignore_result=True)
def requeue_stuck_runs() -> None:
    stuck = maintenance.requeue_stuck()
    if stuck.lost_calls or stuck.orphans:
        log.warning("requeued %d lost calls and %d orphaned runs", len(stuck.lost_calls), len(stuck.orphans))


@shared_task(name="runs.cron_tick", acks_late=True, ignore_result=True)
def cron_tick(function_id: str, expression: str) -> None:
    """A cron tick of one function: starts its run for this minute (at most once)."""
    cron_runs.start_cron_run(function_id, expression)


# The task's name before it was `runs.cron_tick`: messages already queued (and beat rows not yet
# renamed by migration 0007 or a re-sync) still carry it.
@shared_task(name="functions.fire_cron", acks_late=True, ignore_result=True)
def cron_tick_by_old_name(function_id: str, expression: str) -> None:
    cron_runs.start_cron_run(function_id, expression)
