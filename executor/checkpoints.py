"""Async checkpointing (protocol-next.md §1): an SDK runs several steps inside one call and reports
each to `POST /v1/checkpoint/{runId}/async` before going on, instead of answering once per step.

A call offers it by carrying its pending call's id (`ctx.qi_id`) and its claim's generation
(`x-inngest-generation-id`). A checkpoint is accepted only while that claim still holds the call:
a report from a call whose worker died or gave up on it is stale (409), and the SDK stops.
Steps are stored under the unique (run, step id) constraint, so a report sent twice is harmless.
What rides along a step (its metadata) or the run (defers added or aborted while it ran, ops
DeferAdd and DeferAbort) is recorded with them, as when it comes in a call's answer.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Sum
from django.db.models.functions import Length
from django.utils import timezone

from core.json_text import dump_json
from executor.decision import op_problem
from executor.limits import breach_of, configured_limits
from executor.opcodes import LAZY_OPCODES, Op, Opcode, UnknownOpcodeError, parse_op
from executor.responses import CallView, SdkResponse
from executor.side_ops import side_commands
from runs.checkpoints import CheckpointedRun, read_checkpointed_run, record_checkpointed_side, record_checkpointed_steps
from runs.decision_commands import Decision, RecordStep
from runs.models import PendingCall, Step
from runs.sql_batch import two_messages

# The JS SDK's `serve` handlers stop running steps after 10 s (DefaultMaxRuntime.serve) and
# answer; a call must be allowed that long plus the step in flight, or it would be cut off and
# retried while the SDK is still at work.
SDK_MAX_RUNTIME_SECONDS = 10.0
CALL_TIME_MARGIN_SECONDS = 50.0
_STORED = {Opcode.STEP_RUN, Opcode.STEP}
_IGNORED = {Opcode.STEP_PLANNED}  # announced, not finished: only a trace entry in Inngest


class CheckpointRefused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class AsyncCheckpoint:
    run_id: str
    queue_item_id: int
    generation: int | None  # None: the SDK did not say (an older SDK), so it is not compared
    ops: tuple[Op, ...]
    body_bytes: int
    timings: dict[str, tuple[datetime, datetime]] = field(default_factory=dict)  # step id: when it ran


def is_offered(step_target: str, is_immediate_execution_disabled: bool) -> bool:
    """Whether a call offers checkpointing: discovery calls only (the SDK checkpoints nothing
    else), while the run allows immediate execution, and with time for the SDK's whole turn."""
    return (
        settings.INNGEST_ASYNC_CHECKPOINTING and step_target == "step" and not is_immediate_execution_disabled
        and settings.INNGEST_CALL_TIMEOUT_SECONDS >= SDK_MAX_RUNTIME_SECONDS + CALL_TIME_MARGIN_SECONDS
    )


def read_async_checkpoint(run_id: str, body: Any, body_bytes: int) -> AsyncCheckpoint:
    """The checkpoint in the request body, or CheckpointRefused(400) saying what is wrong."""
    if not isinstance(body, dict):
        raise CheckpointRefused(400, "the body must be a JSON object")
    if body.get("run_id") not in (None, run_id):
        raise CheckpointRefused(400, "run_id in the body does not match the URL")
    queue_item_id, generation = body.get("qi_id"), body.get("generation_id")
    if not isinstance(queue_item_id, str) or not queue_item_id.isdigit():
        raise CheckpointRefused(400, "qi_id must be the queue item id the call carried")
    if generation is not None and (type(generation) is not int or generation < 0):
        raise CheckpointRefused(400, "generation_id must be a non-negative integer")
    steps = body.get("steps")
    if not isinstance(steps, list):
        raise CheckpointRefused(400, "steps must be an array of ops")
    try:
        ops = tuple(parse_op(step) for step in steps)
    except UnknownOpcodeError as exc:
        raise CheckpointRefused(400, f"invalid op: {exc}") from None
    for op in ops:
        if op.op not in _STORED | _IGNORED | LAZY_OPCODES:
            raise CheckpointRefused(400, f"cannot checkpoint opcode {op.op.value}: only finished steps and defers are checkpointed")
        if problem := op_problem(op):
            raise CheckpointRefused(400, f"invalid op: {problem}")
    timings = {op.id: timing for op, step in zip(ops, steps) if (timing := _timing(step.get("timing")))}
    return AsyncCheckpoint(run_id, int(queue_item_id), generation, ops, body_bytes, timings)


def _timing(value: Any) -> tuple[datetime, datetime] | None:
    """When a step ran, from the SDK's Go-style interval {a: start in ns since the epoch, b:
    duration in ns}; None when absent or implausible (the history then shows the report's time)."""
    if not isinstance(value, dict) or type(value.get("a")) not in (int, float) or type(value.get("b")) not in (int, float):
        return None
    now = timezone.now()
    try:
        started_at = datetime.fromtimestamp(value["a"] / 1e9, tz=now.tzinfo)
        ended_at = started_at + timedelta(microseconds=value["b"] / 1e3)
    except (OverflowError, OSError, ValueError):
        return None
    if not (now - timedelta(days=1) <= started_at <= ended_at <= now + timedelta(minutes=5)):
        return None
    return started_at, ended_at


def store_async_checkpoint(checkpoint: AsyncCheckpoint) -> int:
    """Store the checkpoint's finished steps and what rides along them; how many steps were new.
    CheckpointRefused: 404 no such run, 409 the call is no longer held by the claim that made it,
    413 past a run limit."""
    records = [_record(op) for op in checkpoint.ops if op.op in _STORED]
    max_input_bytes = configured_limits().max_step_output_bytes
    # Usually nothing rides along: the checkpoint is then two round trips (runs/checkpoints.py).
    may_ride = bool(side_commands(list(checkpoint.ops), max_input_bytes))
    with two_messages(with_orm=may_ride) as messages:
        held = read_checkpointed_run(messages, checkpoint.run_id, checkpoint.queue_item_id, [r.step_id for r in records])
        call = _held_call(checkpoint, held)
        new = _new_steps(call, checkpoint, records, held) if records else []
        new_ids = {r.step_id for r in new}
        # A step's metadata is kept once, with the step, under the attempt that ran it: before
        # storing the steps resets the call's attempts. Defers are insert-only by themselves.
        riding = [op for op in checkpoint.ops if op.op in LAZY_OPCODES or op.id in new_ids]
        if may_ride:
            record_checkpointed_side(call, side_commands(riding, max_input_bytes))
        return record_checkpointed_steps(messages, call, new, held.stored, checkpoint.timings, timezone.now())


def _held_call(checkpoint: AsyncCheckpoint, held: CheckpointedRun) -> PendingCall:
    """The checkpoint's call, locked, if the claim that made the checkpoint still holds it."""
    call = held.call
    if call is None:
        if not held.is_found:
            raise CheckpointRefused(404, "run not found")
        raise CheckpointRefused(409, "stale dispatch: the call this checkpoint belongs to has ended")
    if not call.lease_owner or checkpoint.generation not in (None, call.generation):
        raise CheckpointRefused(409, f"stale dispatch: generation {checkpoint.generation} is not the call's "
                                     f"current generation {call.generation}")
    return call


def _new_steps(call: PendingCall, checkpoint: AsyncCheckpoint, records: list[RecordStep], held: CheckpointedRun) -> list[RecordStep]:
    """The steps not already memoized; CheckpointRefused past a run limit."""
    _refuse_past_limits(call, records, held.known, held.stored, checkpoint.body_bytes)
    return [r for r in {r.step_id: r for r in records}.values() if r.step_id not in held.known]


def _record(op: Op) -> RecordStep:
    # The same memo as a StepRun (or legacy Step) answer gets (executor/decision.py).
    output = {"data": op.data} if op.op is Opcode.STEP_RUN else op.data
    return RecordStep(op.id, op.label, op.op.value, output)


def _refuse_past_limits(call: PendingCall, records: list[RecordStep], known: set[str], stored: int, body_bytes: int) -> None:
    """The limits a call's answer is held to (executor/limits.py). A refused checkpoint stores
    nothing; the SDK then answers the call with the steps, and the decision applies the limit."""
    run, limits = call.run, configured_limits()
    state_bytes = len(dump_json(run.events or []))
    # Each stored output is at most a step's limit: summing them (reading every output) is only
    # needed when that many could fill the run's state.
    if state_bytes + (stored + len(records)) * limits.max_step_output_bytes > limits.max_state_bytes:
        state_bytes += Step.objects.filter(run_id=run.id).aggregate(size=Sum(Length("output")))["size"] or 0
    view = CallView("step", call.attempt, run.function.max_attempts, steps_recorded=stored, memoized=known,
                    state_bytes=state_bytes, limits=limits)
    breach = breach_of(Decision(commands=tuple(records)), view, SdkResponse(status=200, body_bytes=body_bytes))
    if breach is not None:
        raise CheckpointRefused(413, f"{breach.name}: {breach.message}")
