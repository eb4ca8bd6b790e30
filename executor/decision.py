"""The state machine of one call: given the call, the SDK's answer and the time, what happens next.

Pure: no ORM, no HTTP, no clock, no randomness of its own. `decide()` returns a Decision whose
commands runs/lifecycle.py applies in one transaction. One small handler per status and opcode.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Callable

from core.expressions import ExpressionError, compile_expression
from core.json_body import unstorable_text
from executor.backoff import backoff_seconds, parse_retry_after
from runs.decision_commands import (
    Command, Decision, FinishRun, InvokeFunction, OpenWait, PlanParallel, RecordStep, ScheduleCall,
)
from core.durations import DurationError, resolve_due_time
from executor.limits import breach_of, makes_progress
from executor.opcodes import Op, Opcode, UnknownOpcodeError, parse_ops
from executor.responses import CallView, SdkResponse

COMPLETED, FAILED = "completed", "failed"
DISCOVERY = "step"
MAX_SLEEP = timedelta(days=366)
DEFAULT_INVOKE_TIMEOUT = timedelta(days=365)
MAX_STEP_ID_LENGTH = 64  # SDKs send a SHA-1 in hex (40 characters)
MAX_NAME_LENGTH = 255  # event names, as /e/ takes them
NOT_FROM_SDK = "The response did not come from an Inngest SDK"
INVALID_RESPONSE = "InngestErrInvalidResponse"  # an answer that cannot be used as it is
# Ops of a parallel group that finish after this answer: their completion may trigger discovery.
_FINISH_LATER = {Opcode.STEP_PLANNED, Opcode.SLEEP, Opcode.WAIT_FOR_EVENT, Opcode.INVOKE_FUNCTION}


@dataclass(frozen=True)
class Clock:
    """The time and the randomness a decision may use, given by the caller."""

    now: datetime
    jitter_fraction: float = 0.0  # in [0, 1): picks the jitter of a backoff
    linear_retry_seconds: float = 0.0  # `--retry-interval`: linear backoff instead of the table


def decide(call: CallView, response: SdkResponse, clock: Clock) -> Decision:
    decision = _decide(call, response, clock)
    if not makes_progress(decision, call.memoized):
        decision = replace(decision, calls_without_progress=call.calls_without_progress + 1)
    breach = breach_of(decision, call, response)
    if breach is None:
        return decision
    if breach.is_retriable:
        return replace(_retry_or_fail(call, response, clock, breach.error), calls_without_progress=decision.calls_without_progress)
    return Decision(commands=(FinishRun(FAILED, breach.error),), opcode="Error", error=breach.error)


def decide_failure(call: CallView, clock: Clock, error: dict[str, str]) -> Decision:
    """A call whose answer could not be read or recorded: retried as a failed call is."""
    decision = _retry_or_fail(call, SdkResponse(status=None), clock, error)
    return replace(decision, calls_without_progress=call.calls_without_progress + 1)


def _decide(call: CallView, response: SdkResponse, clock: Clock) -> Decision:
    if response.status is None:
        return _retry_or_fail(call, response, clock, _error("Error", f"Unable to reach SDK URL: {response.transport_error}"))
    if response.answer_error is not None:
        return _retry_or_fail(call, response, clock, _error(INVALID_RESPONSE, f"The app's answer cannot be used: {response.answer_error}"))
    if not response.has_sdk_header:
        return _retry_or_fail(call, response, clock, _not_from_sdk(response.status))
    if response.status == 206:
        return _on_ops(call, response, clock)
    if 200 <= response.status < 300:
        return Decision(commands=(FinishRun(COMPLETED, response.body),), opcode="RunComplete", output=response.body)
    return _retry_or_fail(call, response, clock, _function_error(response.body))


# --- function-level errors -------------------------------------------------------------------

def _retry_or_fail(call: CallView, response: SdkResponse, clock: Clock, error: Any) -> Decision:
    """A failed call: retried with backoff while attempts remain, else the run fails with `error`."""
    if call.has_attempts_left and not response.is_no_retry:
        due_at = _retry_due_at(call, response, clock)
        schedule = ScheduleCall(call.step_target, call.attempt + 1, due_at)
        return Decision(commands=(schedule,), opcode="Error", error=error)
    return Decision(commands=(FinishRun(FAILED, error),), opcode="Error", error=error)


def _retry_due_at(call: CallView, response: SdkResponse, clock: Clock) -> datetime:
    retry_at = parse_retry_after(response.retry_after, clock.now)
    if retry_at is not None:
        return retry_at
    delay = backoff_seconds(call.attempt, clock.jitter_fraction, clock.linear_retry_seconds)
    return clock.now + timedelta(seconds=delay)


def _function_error(body: Any) -> Any:
    """The error body as the SDK sent it: it becomes the failed run's output."""
    if isinstance(body, dict) and body:
        return body
    return _error("Error", body if isinstance(body, str) and body else "The function returned an error")


def _not_from_sdk(status: int) -> dict[str, str]:
    if 200 <= status < 300:
        return _error("Error", NOT_FROM_SDK)
    return _error("Error", f"Your server returned HTTP {status} before the SDK responded.")


def _error(name: str, message: str) -> dict[str, str]:
    return {"name": name, "message": message}


# --- 206: opcodes ------------------------------------------------------------------------------

def _on_ops(call: CallView, response: SdkResponse, clock: Clock) -> Decision:
    try:
        ops = [op for op in parse_ops(response.body) if op.op is not Opcode.NONE]
    except UnknownOpcodeError as exc:
        error = _error("UnknownOpcodeError", f"The SDK answered with an op this server does not know: {exc}")
        return Decision(commands=(FinishRun(FAILED, error),), opcode="Error", error=error)
    if len(ops) > call.limits.max_ops_per_response:
        error = _error("InngestErrFunctionOverflowed", f"The SDK answered with more than {call.limits.max_ops_per_response} ops.")
        return Decision(commands=(FinishRun(FAILED, error),), opcode="Error", error=error)
    problem = next((problem for op in ops if (problem := _op_problem(op))), "")
    if problem:
        return _retry_or_fail(call, response, clock, _error(INVALID_RESPONSE, f"The SDK answered with an invalid op: {problem}"))
    if not ops:
        return _with_version(Decision(commands=(_discovery(clock),), opcode="None"), response)
    if len(ops) == 1:
        return _with_version(_on_op(ops[0], call, response, clock), response)
    return _with_version(_on_many_ops(ops, call, response, clock), response)


def _op_problem(op: Op) -> str:
    """What makes an op's id or names unusable as a row's key or label, or ""."""
    if len(op.id) > MAX_STEP_ID_LENGTH:
        return f"its id is longer than {MAX_STEP_ID_LENGTH} characters ({op.id[:80]!r}…)"
    for field, text in (("id", op.id), ("name", op.name), ("displayName", op.display_name)):
        if problem := unstorable_text(text):
            return f"its {field}: {problem}"
    return ""


def _with_version(decision: Decision, response: SdkResponse) -> Decision:
    if response.request_version is None:
        return decision
    return replace(decision, request_version=response.request_version)


def _on_many_ops(ops: list[Op], call: CallView, response: SdkResponse, clock: Clock) -> Decision:
    """Several ops at once (parallel steps): carry out each; discovery is asked for once."""
    commands: list[Command] = []
    for op in ops:
        for command in _on_op(op, call, response, clock).commands:
            if command not in commands:
                commands.append(command)
    finish = next((c for c in commands if isinstance(c, FinishRun)), None)
    if finish is not None:
        return Decision(commands=(finish,), opcode="Error", error=finish.output)
    if any(op.op is Opcode.STEP_PLANNED for op in ops):
        later = tuple(op.id for op in ops if op.op in _FINISH_LATER)
        is_race = any(op.opts.get("parallelMode") == "race" for op in ops)
        commands.append(PlanParallel(later, "race" if is_race else "wait"))
    return Decision(commands=tuple(commands), opcode="Parallel", disable_immediate_execution=True)


def _on_op(op: Op, call: CallView, response: SdkResponse, clock: Clock) -> Decision:
    handler = _HANDLERS.get(op.op, _on_unsupported)
    return handler(op, call, response, clock)


def _discovery(clock: Clock) -> ScheduleCall:
    return ScheduleCall(DISCOVERY, 0, clock.now)


def _step_decision(op: Op, commands: tuple[Command, ...], **fields: Any) -> Decision:
    return Decision(commands=commands, opcode=op.op.value, step_id=op.id, step_name=op.label, **fields)


def _on_step_run(op: Op, call: CallView, response: SdkResponse, clock: Clock) -> Decision:
    record = RecordStep(op.id, op.label, op.op.value, {"data": op.data})
    return _step_decision(op, (record, _discovery(clock)), output=op.data)


def _on_legacy_step(op: Op, call: CallView, response: SdkResponse, clock: Clock) -> Decision:
    record = RecordStep(op.id, op.label, op.op.value, op.data)
    return _step_decision(op, (record, _discovery(clock)), output=op.data)


def _on_step_error(op: Op, call: CallView, response: SdkResponse, clock: Clock) -> Decision:
    """A step attempt failed: retry the same call, or memoize the error so user code can catch it."""
    if op.error is None:
        error = _error("Error", "The SDK reported a StepError without an error")
        return _retry_or_fail(call, response, clock, error)
    if call.has_attempts_left and not response.is_no_retry:
        schedule = ScheduleCall(call.step_target, call.attempt + 1, _retry_due_at(call, response, clock))
        return _step_decision(op, (schedule,), error=op.error)
    return _on_step_failed(op, call, response, clock)


def _on_step_failed(op: Op, call: CallView, response: SdkResponse, clock: Clock) -> Decision:
    record = RecordStep(op.id, op.label, Opcode.STEP_FAILED.value, {"error": op.error})
    return _step_decision(op, (record, _discovery(clock)), error=op.error)


def _on_step_planned(op: Op, call: CallView, response: SdkResponse, clock: Clock) -> Decision:
    return _step_decision(op, (ScheduleCall(op.id, 0, clock.now),))


def _on_sleep(op: Op, call: CallView, response: SdkResponse, clock: Clock) -> Decision:
    """Sleep: a wait with only a due time; at the wake-up the step's memo is null."""
    spec = str(op.opts.get("duration") or op.name or "")
    try:
        wake_at = max(resolve_due_time(spec, clock.now), clock.now)
    except DurationError as exc:
        return _fail_early(op, "InngestErrInvalidSleep", f"Invalid sleep duration: {exc}")
    if wake_at - clock.now > MAX_SLEEP:
        return _fail_early(op, "InngestErrTimeoutTooLong", "A sleep may last at most 366 days.")
    sleep = OpenWait(op.id, op.display_name or op.id, "", "", wake_at, kind="sleep")
    return _step_decision(op, (sleep,))


def _on_wait_for_event(op: Op, call: CallView, response: SdkResponse, clock: Clock) -> Decision:
    """Pause until a matching event or the timeout; the memo is the event, or null on timeout."""
    event_name = str(op.opts.get("event") or op.name or "")
    expression = op.opts.get("if") or ""
    if not event_name:
        return _fail_early(op, "InngestErrInvalidWait", "waitForEvent needs an event name.")
    if len(event_name) > MAX_NAME_LENGTH:
        return _fail_early(op, "InngestErrInvalidWait", f"waitForEvent's event name is longer than {MAX_NAME_LENGTH} characters.")
    if problem := unstorable_text([event_name, str(expression)]):
        return _fail_early(op, "InngestErrInvalidWait", f"Invalid waitForEvent: {problem}")
    try:
        expires_at = resolve_due_time(str(op.opts.get("timeout") or "0s"), clock.now)
        if expression:
            compile_expression(str(expression))
    except (DurationError, ExpressionError) as exc:
        return _fail_early(op, "InngestErrInvalidWait", f"Invalid waitForEvent: {exc}")
    if expires_at - clock.now > MAX_SLEEP:
        return _fail_early(op, "InngestErrTimeoutTooLong", "A wait may last at most 366 days.")
    wait = OpenWait(op.id, op.display_name or op.id, event_name, str(expression), expires_at)
    return _step_decision(op, (wait,))


def _on_invoke(op: Op, call: CallView, response: SdkResponse, clock: Clock) -> Decision:
    """Start the target function's run; the memo is its result, its error, or a timeout error."""
    function_id = str(op.opts.get("function_id") or "")
    payload = op.opts.get("payload") if isinstance(op.opts.get("payload"), dict) else {}
    if not function_id:
        return _fail_early(op, "InngestErrInvalidInvoke", "invoke needs a function_id.")
    if problem := _invoke_problem(function_id, payload):
        return _fail_early(op, "InngestErrInvalidInvoke", f"Invalid invoke: {problem}")
    try:
        timeout = op.opts.get("timeout")
        expires_at = resolve_due_time(str(timeout), clock.now) if timeout else clock.now + DEFAULT_INVOKE_TIMEOUT
    except DurationError as exc:
        return _fail_early(op, "InngestErrInvalidInvoke", f"Invalid invoke timeout: {exc}")
    invoke = InvokeFunction(op.id, op.display_name or op.id, function_id, payload, expires_at)
    return _step_decision(op, (invoke,))


def _invoke_problem(function_id: str, payload: dict) -> str:
    """What in an invoke's target or payload cannot be stored as the invoked event, or ""."""
    for field in ("id", "v"):
        if len(str(payload.get(field) or "")) > MAX_NAME_LENGTH:
            return f"the payload's {field} is longer than {MAX_NAME_LENGTH} characters"
    return unstorable_text([function_id, str(payload.get("id") or ""), str(payload.get("v") or "")])


def _on_run_complete(op: Op, call: CallView, response: SdkResponse, clock: Clock) -> Decision:
    return _step_decision(op, (FinishRun(COMPLETED, op.data),), output=op.data)


def _on_discovery_request(op: Op, call: CallView, response: SdkResponse, clock: Clock) -> Decision:
    return _step_decision(op, (_discovery(clock),))


def _on_unsupported(op: Op, call: CallView, response: SdkResponse, clock: Clock) -> Decision:
    return _fail_early(op, "UnsupportedOpcodeError", f"The opcode {op.op.value} is not supported by this server.")


def _fail_early(op: Op, name: str, message: str) -> Decision:
    error = _error(name, message)
    return _step_decision(op, (FinishRun(FAILED, error),), error=error)


Handler = Callable[[Op, CallView, SdkResponse, Clock], Decision]
_HANDLERS: dict[Opcode, Handler] = {
    Opcode.STEP_RUN: _on_step_run,
    Opcode.STEP: _on_legacy_step,
    Opcode.STEP_ERROR: _on_step_error,
    Opcode.STEP_FAILED: _on_step_failed,
    Opcode.STEP_PLANNED: _on_step_planned,
    Opcode.SLEEP: _on_sleep,
    Opcode.WAIT_FOR_EVENT: _on_wait_for_event,
    Opcode.INVOKE_FUNCTION: _on_invoke,
    Opcode.RUN_COMPLETE: _on_run_complete,
    Opcode.DISCOVERY_REQUEST: _on_discovery_request,
}
