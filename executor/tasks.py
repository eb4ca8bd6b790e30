"""Celery entry points. Thin and idempotent: correctness comes from rows and their guards."""
from __future__ import annotations

from celery import shared_task

from executor import run_loop, timers


@shared_task(name="executor.execute_call", acks_late=True, ignore_result=True)
def execute_call(call_id: int) -> None:
    """Make the pending call `call_id` (and the ones that follow at once) if it is still due."""
    run_loop.run_call(call_id)


@shared_task(name="executor.tick_timers", acks_late=True, ignore_result=True)
def tick_timers() -> None:
    """Time out waits, wake sleeps, start held runs, and send due calls that have no message in flight."""
    timers.tick_timers()


# The task's name before it was `executor.tick_timers`: messages already queued (and beat rows
# not yet renamed by runs' migration 0007) still carry it.
@shared_task(name="executor.sweep_due_calls", acks_late=True, ignore_result=True)
def tick_timers_by_old_name() -> None:
    timers.tick_timers()
