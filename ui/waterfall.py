"""A run's history as a waterfall: one row per call to the app, per step that ended on its own
(a sleep, a wait, an invoke) and per open wait, each a bar on the run's time axis (queued, then
running), in words a user reads ("step ran", "retry 2 scheduled at …") rather than opcodes."""
from __future__ import annotations

import bisect
import json
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from runs.models import PendingCall, Run, RunStatus, Step, StepAttempt, Wait, WaitKind
from ui.error_view import ErrorView, read_error

# Opcodes whose memo is not the answer of a call: the step ended later, on its own.
_ASYNC_OPS = {"Sleep": "slept", "WaitForEvent": "waited for an event", "InvokeFunction": "waited for the invoked run",
              "WaitForSignal": "waited for a signal"}
_CALL_WORDS = {
    "RunComplete": "function returned its result", "StepRun": "step ran", "Step": "step ran",
    "StepPlanned": "step planned", "Parallel": "planned steps to run in parallel", "Sleep": "asked to sleep",
    "WaitForEvent": "asked to wait for an event", "InvokeFunction": "invoked another function",
    "StepError": "step threw an error", "StepFailed": "step failed for good", "None": "found nothing new to run",
    "Error": "function threw an error",
}
_OPEN_WAIT_WORDS = {
    WaitKind.SLEEP: "sleeping until {until}", WaitKind.EVENT: "waiting for {event} until {until}",
    WaitKind.INVOKE: "waiting for the invoked run until {until}", WaitKind.CANCEL: "cancels if {event} arrives (until {until})",
    WaitKind.TIMEOUT: "cancels the run at {until} ({name})",
    WaitKind.SIGNAL: "waiting for signal {signal} until {until}",
}


@dataclass(frozen=True)
class Row:
    kind: str  # "queue", "call", "step", "wait", "retry" or "end"
    title: str  # the step as the user named it, or what the row is
    words: str  # what happened, in words
    status: str  # css hint: ok, error, retry, waiting, cancelled, queued
    started_at: datetime
    ended_at: datetime | None = None  # None: a moment, not a span
    queued_at: datetime | None = None  # when the call became due, if before it started
    is_open: bool = False  # still going (an open wait, a call not answered yet)
    input: str = ""
    output: str = ""
    error: ErrorView | None = None
    # Where the bar sits on the run's axis, in percent (set by build_waterfall).
    queue_left: float = 0.0
    queue_width: float = 0.0
    left: float = 0.0
    width: float = 0.0

    @property
    def duration(self) -> timedelta | None:
        return None if self.ended_at is None else self.ended_at - self.started_at

    @property
    def queued_for(self) -> timedelta | None:
        return None if self.queued_at is None else self.started_at - self.queued_at


@dataclass(frozen=True)
class Waterfall:
    rows: list[Row]
    starts_at: datetime
    ends_at: datetime


def build_waterfall(run: Run, now: datetime) -> Waterfall:
    """Four queries whatever the run's length: steps, attempts, waits, pending calls."""
    steps = list(Step.objects.filter(run=run).order_by("position"))
    attempts = list(StepAttempt.objects.filter(run=run).order_by("started_at", "id"))
    waits = list(Wait.objects.filter(run=run).order_by("created_at")) if not run.is_terminal else []
    pending = list(PendingCall.objects.filter(run=run, attempt__gt=0)) if not run.is_terminal else []
    names = {step.step_id: step.name for step in steps if step.name}
    rows = _queue_rows(run, attempts)
    rows += _call_rows(run, attempts, steps, pending, names)
    rows += [_async_step_row(step, attempts) for step in steps if step.op in _ASYNC_OPS]
    rows += _copied_step_rows(run, steps, attempts)
    rows += [_wait_row(wait, now) for wait in waits]
    rows += [_retry_row(call, attempts, names, now) for call in pending]
    rows += _end_rows(run)
    rows.sort(key=lambda row: (row.queued_at or row.started_at, row.started_at))
    ends_at = max([run.ended_at or now] + [row.ended_at or row.started_at for row in rows])
    return Waterfall([_placed(row, run.created_at, ends_at, now) for row in rows], run.created_at, ends_at)


def _queue_rows(run: Run, attempts: list[StepAttempt]) -> list[Row]:
    first_call = run.started_at or (attempts[0].started_at if attempts else None)
    if first_call is None:
        if run.is_terminal:
            return []
        return [Row("queue", "Queued", "waiting for its first call", "queued", run.created_at, is_open=True)]
    return [Row("queue", "Queued", "from the event to the first call", "queued", run.created_at, first_call)]


def _call_rows(run: Run, attempts: list[StepAttempt], steps: list[Step], pending: list[PendingCall],
               names: dict[str, str]) -> list[Row]:
    # A call became due when the call before it ended or a sleep, wait or invoke ended.
    ready = sorted([a.ended_at for a in attempts] + [s.created_at for s in steps if s.op in _ASYNC_OPS])
    retried = {(a.step_target, a.attempt) for a in attempts}
    scheduled = {(call.step_target, call.attempt) for call in pending}
    rows = []
    for attempt in attempts:
        index = bisect.bisect_right(ready, attempt.started_at)
        queued_at = ready[index - 1] if index else (run.started_at or run.created_at)
        rows.append(_call_row(run, attempt, names, queued_at, retried, scheduled))
    return rows


def _call_row(run: Run, attempt: StepAttempt, names: dict[str, str], queued_at: datetime,
              retried: set, scheduled: set) -> Row:
    if attempt.is_checkpointed:  # run by the SDK inside a call and reported to /v1/checkpoint
        title = attempt.step_name or names.get(attempt.step_id, "") or attempt.step_id
        return Row("step", title, f"{attempt.opcode} checkpointed by the app", "ok", attempt.started_at,
                   attempt.ended_at, output=_json(attempt.output))
    error = read_error(attempt.error) if attempt.error is not None else None
    failed = error is not None or attempt.status_code is None or attempt.status_code >= 400
    words = _CALL_WORDS.get(attempt.opcode, attempt.opcode or "called the app")
    if attempt.status_code is None:
        words = "could not reach the app"
    if failed:
        next_try = (attempt.step_target, attempt.attempt + 1)
        if next_try in retried:
            words += f"; attempt {attempt.attempt + 2} followed"
        elif next_try in scheduled:
            words += f"; attempt {attempt.attempt + 2} scheduled"
        elif run.status == RunStatus.FAILED:
            words += "; no retries left, the run failed"
    title = attempt.step_name or names.get(attempt.step_id, "")
    if not title:
        title = run.function.name if attempt.step_target == "step" else names.get(attempt.step_target, attempt.step_target)
    if attempt.attempt:
        title += f" · attempt {attempt.attempt + 1}"
    return Row("call", title, words, "error" if failed else "ok", attempt.started_at, attempt.ended_at,
               queued_at=queued_at if queued_at < attempt.started_at else None,
               output=_json(attempt.output), error=error)


def _async_step_row(step: Step, attempts: list[StepAttempt]) -> Row:
    asked = [a.ended_at for a in attempts if a.step_id == step.step_id and a.opcode == step.op]
    started_at = min(asked) if asked else step.created_at
    output = step.output
    error = read_error(output.get("error")) if isinstance(output, dict) and isinstance(output.get("error"), dict) else None
    return Row("step", step.name or step.step_id, _ASYNC_OPS[step.op], "error" if error else "ok", started_at,
               step.created_at, output=_json(output), error=error)


def _copied_step_rows(run: Run, steps: list[Step], attempts: list[StepAttempt]) -> list[Row]:
    """A rerun from a step starts with the steps before it already done: no call ran them here."""
    if not run.rerun_of_id:
        return []
    called = {a.step_id for a in attempts}
    rows = []
    for step in steps:
        if step.op in _ASYNC_OPS or step.step_id in called:
            continue
        # The step the rerun started at, not called: its output was given with the rerun.
        given = (step.name or step.step_id) == run.rerun_from_step
        words = "output given for this rerun" if given else f"kept from run {run.rerun_of_id}"
        rows.append(Row("step", step.name or step.step_id, words, "ok", step.created_at, step.created_at, output=_json(step.output)))
    return rows


def _wait_row(wait: Wait, now: datetime) -> Row:
    words = _OPEN_WAIT_WORDS.get(wait.kind, wait.kind).format(
        until=f"{wait.expires_at:%Y-%m-%d %H:%M:%S} UTC", event=wait.event_name, name=wait.step_name or wait.step_id,
        signal=wait.signal or "(taken over by another run)",
    )
    condition = f"if {wait.expression}" if wait.expression else ""
    title = {WaitKind.CANCEL: "Cancel condition", WaitKind.TIMEOUT: "Timeout"}.get(wait.kind, wait.step_name or wait.step_id)
    is_bar = wait.kind in (WaitKind.SLEEP, WaitKind.EVENT, WaitKind.INVOKE, WaitKind.SIGNAL)
    return Row("wait", title, words, "waiting", wait.created_at, now if is_bar else None, is_open=is_bar, input=condition)


def _retry_row(call: PendingCall, attempts: list[StepAttempt], names: dict[str, str], now: datetime) -> Row:
    failures = [a.ended_at for a in attempts if a.step_target == call.step_target and a.attempt == call.attempt - 1]
    since = failures[-1] if failures else now
    step = names.get(call.step_target, "") if call.step_target != "step" else ""
    words = f"attempt {call.attempt + 1} scheduled at {call.due_at:%H:%M:%S} UTC"
    if call.parked_on:
        words += f", waiting for a concurrency slot ({call.parked_on})"
    return Row("retry", f"Retry{' of ' + step if step else ''}", words, "retry", since, max(call.due_at, since), is_open=True)


def _end_rows(run: Run) -> list[Row]:
    if run.status == RunStatus.CANCELLED and run.ended_at:
        by = run.cancelled_by or (run.flow_reason if run.flow_action == "cancelled" else "") or "not recorded"
        return [Row("end", "Cancelled", f"cancelled by {by}", "cancelled", run.ended_at)]
    if run.status == RunStatus.SKIPPED:
        return [Row("end", "Skipped", run.flow_reason or "skipped by flow control", "cancelled", run.created_at)]
    return []


def _placed(row: Row, start: datetime, end: datetime, now: datetime) -> Row:
    total = max((end - start).total_seconds(), 0.001)

    def percent(moment: datetime) -> float:
        return round(min(max((moment - start).total_seconds() / total * 100, 0.0), 100.0), 3)

    left = percent(row.started_at)
    right = percent(row.ended_at or row.started_at)
    queue_left = percent(row.queued_at) if row.queued_at else left
    return replace(row, queue_left=queue_left, queue_width=round(left - queue_left, 3), left=left, width=round(right - left, 3))


def _json(value: Any) -> str:
    if value is None:
        return ""
    return json.dumps(value, indent=2, sort_keys=True, default=str)
