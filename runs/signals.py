"""Signals (JS `step.waitForSignal`, `POST /v1/signals`): a run waits for a signal by name, and
the name is unique among open waits; sending the signal resumes that run with {signal, data}.

The uniqueness is the database's (the partial unique index `wait_signal_unique`), so two runs
opening a wait on one name at the same time cannot both get it.
"""
from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from runs import pending_calls
from runs.decision_commands import OpenWait
from runs.models import Run, Wait, WaitKind
from runs.waits import resume

SIGNAL_CONFLICT = "Signal conflict; signal wait already exists for another run"


def open_signal_wait(run: Run, wait: OpenWait) -> dict | None:
    """Open the wait; the error to fail the run with when another run holds the signal and
    `onConflict` is "fail". With "replace" the other wait loses the name and only times out."""
    if Wait.objects.filter(run=run, step_id=wait.step_id).exists():
        return None  # the same wait reported again by a repeated call
    for _ in range(2):
        if wait.replace_on_conflict:
            Wait.objects.filter(kind=WaitKind.SIGNAL, signal=wait.signal).update(signal="")
        try:
            with transaction.atomic():  # a savepoint: a conflict must not undo the rest of the decision
                Wait.objects.create(run=run, kind=WaitKind.SIGNAL, step_id=wait.step_id, step_name=wait.name[:255],
                                    event_name="", signal=wait.signal, expires_at=wait.expires_at)
        except IntegrityError:
            if not wait.replace_on_conflict:
                return {"name": "Error", "message": SIGNAL_CONFLICT}
            continue  # taken between the update and the insert: take it over again
        pending_calls.tick_at_on_commit(wait.expires_at)
        return None
    return {"name": "Error", "message": SIGNAL_CONFLICT}


def send_signal(signal: str, data: Any) -> str | None:
    """Resume the run waiting for `signal`; its id, or None when no open wait has that name."""
    wait = Wait.objects.filter(kind=WaitKind.SIGNAL, signal=signal, expires_at__gt=timezone.now()).first()
    if wait is None or not resume(wait, {"signal": signal, "data": data}):
        return None
    return wait.run_id
