"""Celery entry points. Thin and idempotent: correctness comes from rows and their guards."""
from __future__ import annotations

from celery import shared_task

from executor import dispatch, run_loop


@shared_task(name="executor.execute_call", acks_late=True, ignore_result=True)
def execute_call(call_id: int) -> None:
    """Make the pending call `call_id` (and the ones that follow at once) if it is still due."""
    run_loop.run_call(call_id)


@shared_task(name="executor.sweep_due_calls", acks_late=True, ignore_result=True)
def sweep_due_calls() -> None:
    """Time out waits, and send messages for due calls that have none in flight."""
    dispatch.tick()
