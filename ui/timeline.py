"""A run's history for its page: every call (attempt) and every memoized step, in time order,
plus what it is waiting on now."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from runs.models import Run, Step, StepAttempt, Wait

# Opcodes whose memo is not the answer of a call: the step ended later, on its own.
_ASYNC_OPS = {"Sleep": "slept", "WaitForEvent": "waited for an event", "InvokeFunction": "invoked a function",
              "WaitForSignal": "waited for a signal"}


@dataclass(frozen=True)
class Entry:
    at: datetime
    kind: str  # "call", "step" or "wait"
    title: str
    detail: str = ""
    duration_ms: float | None = None
    status: str = ""  # css hint: ok, error, retry, waiting
    output: str = ""
    error: dict | None = None


def build_timeline(run: Run) -> list[Entry]:
    """Three queries whatever the run's length: attempts, steps, open waits."""
    steps = list(Step.objects.filter(run=run).order_by("position"))
    names = {step.step_id: step.name for step in steps}
    entries = [_call_entry(a, names) for a in StepAttempt.objects.filter(run=run).order_by("started_at", "id")]
    entries += [_step_entry(step) for step in steps if step.op in _ASYNC_OPS]
    entries += [_wait_entry(wait) for wait in Wait.objects.filter(run=run).order_by("created_at")]
    return sorted(entries, key=lambda entry: entry.at)


def _call_entry(attempt: StepAttempt, names: dict[str, str]) -> Entry:
    step = attempt.step_name or names.get(attempt.step_id, "") or ("discovery" if attempt.step_target == "step" else attempt.step_target)
    error = attempt.error if isinstance(attempt.error, dict) else None
    status = "error" if error or (attempt.status_code or 0) >= 400 or attempt.status_code is None else "ok"
    return Entry(
        at=attempt.started_at, kind="call", title=f"{step} · attempt {attempt.attempt + 1}",
        detail=f"HTTP {attempt.status_code or '—'} {attempt.opcode}".strip(), duration_ms=attempt.duration_ms,
        status=status, output=_text(attempt.output), error=error,
    )


def _step_entry(step: Step) -> Entry:
    output = step.output
    error = output.get("error") if isinstance(output, dict) and isinstance(output.get("error"), dict) else None
    return Entry(at=step.created_at, kind="step", title=f"{step.name or step.step_id} · {_ASYNC_OPS[step.op]}",
                 detail=step.op, status="error" if error else "ok", output=_text(output), error=error)


def _wait_entry(wait: Wait) -> Entry:
    what = {
        "sleep": f"sleeping until {wait.expires_at:%Y-%m-%d %H:%M:%S} UTC",
        "event": f"waiting for {wait.event_name} until {wait.expires_at:%Y-%m-%d %H:%M:%S} UTC",
        "invoke": f"waiting for the invoked run until {wait.expires_at:%Y-%m-%d %H:%M:%S} UTC",
        "cancel": f"cancelled by {wait.event_name}",
        "signal": f"waiting for signal {wait.signal or '(taken over by another run)'} until {wait.expires_at:%Y-%m-%d %H:%M:%S} UTC",
        "timeout": f"{wait.step_id.replace('-', ' ')} at {wait.expires_at:%Y-%m-%d %H:%M:%S} UTC",
    }.get(wait.kind, wait.kind)
    return Entry(at=wait.created_at, kind="wait", title=wait.step_name or wait.step_id, detail=what,
                 status="waiting", output=wait.expression)


def _text(value: Any) -> str:
    if value is None:
        return ""
    return json.dumps(value, indent=2, sort_keys=True, default=str)
