"""Span outputs: the ids the trace hands out (`outputID`) and what `runTraceSpanOutputByID` answers.

An output id names a run and one of its steps, or the run itself (its result or its error). It is
opaque to clients; here it is "<run id>:<step id>" in URL-safe base64, "<run id>:" for the run.
"""
from __future__ import annotations

import base64
import json
from typing import Any, Optional

import strawberry
from strawberry.scalars import JSON

from runs.models import Run, RunStatus, Step

_RUN_OUTPUTS = (RunStatus.COMPLETED, RunStatus.FAILED)


@strawberry.type
class StepError:
    message: str
    name: Optional[str]
    stack: Optional[str]
    cause: Optional[JSON] = None


@strawberry.type
class RunTraceSpanOutput:
    data: Optional[str]
    error: Optional[StepError]
    input: Optional[str] = None


def output_id(run_id: str, step_id: str = "") -> str:
    """The id of a step's output, or with no step of the run's own output."""
    return base64.urlsafe_b64encode(f"{run_id}:{step_id}".encode()).decode().rstrip("=")


def run_output_id(run: Run) -> Optional[str]:
    """The root span's output id: a run that ended with a result or an error has one."""
    return output_id(run.id) if run.status in _RUN_OUTPUTS else None


def output_by_id(value: str) -> Optional[RunTraceSpanOutput]:
    """What the id names, or None for an id that names nothing (or is not one of ours)."""
    try:
        text = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    run_id, colon, step_id = text.partition(":")
    if not colon or not run_id:
        return None
    if not step_id:
        return _run_output(run_id)
    memo = Step.objects.filter(run_id=run_id, step_id=step_id).values_list("output", flat=True)
    if not memo.exists():
        return None
    return step_output(memo.first())


def _run_output(run_id: str) -> Optional[RunTraceSpanOutput]:
    row = Run.objects.filter(id=run_id, status__in=_RUN_OUTPUTS).values_list("status", "output").first()
    if row is None:
        return None
    status, output = row
    if status == RunStatus.FAILED:
        return RunTraceSpanOutput(data=None, error=_step_error(output))
    return RunTraceSpanOutput(data=json.dumps(output), error=None)


def error_of(memo: Any) -> Optional[dict]:
    """The error of a step's memo (`{"error": {...}}`), or None for a step that succeeded."""
    if isinstance(memo, dict) and isinstance(memo.get("error"), dict):
        return memo["error"]
    return None


def step_output(memo: Any) -> RunTraceSpanOutput:
    """A step's memo as Inngest shows it: {"data": X} → data X; {"error": …} → error; else raw
    (a sleep's null, a wait's matched event)."""
    error = error_of(memo)
    if error is not None:
        return RunTraceSpanOutput(data=None, error=_step_error(error))
    if isinstance(memo, dict) and set(memo) == {"data"}:
        memo = memo["data"]
    return RunTraceSpanOutput(data=json.dumps(memo), error=None)


def _step_error(error: Any) -> StepError:
    """An error body (the SDK's, or ours) as a StepError; anything not an object is its message."""
    if not isinstance(error, dict):
        return StepError(message="" if error is None else str(error), name="Error", stack=None)
    stack, name = error.get("stack"), error.get("name")
    return StepError(
        message=str(error.get("message") or error.get("error") or ""), name=None if name is None else str(name),
        stack=None if stack is None else str(stack), cause=error.get("cause"),
    )
