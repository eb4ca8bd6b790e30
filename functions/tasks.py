"""Celery entry points of the functions app."""
from __future__ import annotations

from celery import shared_task

from functions.schedules import fire_cron as fire_cron_tick


@shared_task(name="functions.fire_cron", acks_late=True, ignore_result=True)
def fire_cron(function_id: str, expression: str) -> None:
    """A cron tick of one function: starts its run for this minute (at most once)."""
    fire_cron_tick(function_id, expression)
