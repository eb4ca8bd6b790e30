"""Steps an SDK reports while a call is still running (async checkpointing, executor/checkpoints.py).

A checkpoint is a read and a write in one transaction (runs/sql_batch.py `two_messages`): the
read locks the call and reads what the checkpoint is decided on, the write memoizes the new
steps, shows them in the run's history and resets the call's attempts, and commits. On
PostgreSQL that is two round trips; what rides along (defers, step metadata) is recorded with
the ORM between them, in the same transaction.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from functions.models import Function
from runs import pending_calls
from runs.decision_commands import AbortDefer, AddDefer, Command, RecordMetadata, RecordStep
from runs.defers import record_defers
from runs.models import PendingCall, Run, Step, StepAttempt
from runs.run_metadata import record_step_metadata
from runs.sql_batch import TwoMessages, columns_of, for_update, insert_values, instances_of

_HELD_MODELS = (PendingCall, Run, Function)
_CALLS, _RUNS, _FUNCTIONS, _STEPS = (model._meta.db_table for model in (*_HELD_MODELS, Step))
_LOCK_CALL = f"SELECT id FROM {_CALLS} WHERE id = %(call_id)s AND run_id = %(run_id)s"
# The run with its function, its call (NULLs when the run has no such call), how many steps it
# has stored and, for each step id asked about, whether it is one of them; no row: no such run.
_HELD = """SELECT {columns}, (SELECT count(*) FROM {steps} WHERE run_id = %(run_id)s){known}
    FROM {runs} JOIN {functions} ON {functions}.id = {runs}.function_id
    LEFT JOIN {calls} ON {calls}.id = %(call_id)s AND {calls}.run_id = {runs}.id
    WHERE {runs}.id = %(run_id)s"""
_KNOWN = f", EXISTS (SELECT 1 FROM {_STEPS} WHERE run_id = %(run_id)s AND step_id = %(k{{i}})s)"
_NEW_STEPS_TAIL = "ON CONFLICT (run_id, step_id) DO NOTHING"  # a concurrent report of the same step


@dataclass(frozen=True)
class CheckpointedRun:
    """What a checkpoint is decided on, read under the lock of its call."""

    is_found: bool  # the run exists
    call: PendingCall | None  # the checkpoint's call, with its run and function; None: it has ended
    known: set[str]  # the step ids asked about that are stored already
    stored: int  # how many steps the run has stored


def read_checkpointed_run(messages: TwoMessages, run_id: str, call_id: int, step_ids: list[str]) -> CheckpointedRun:
    """Lock the call (where the engine has row locks) and read, in the first message."""
    step_ids = list(dict.fromkeys(step_ids))
    query = _held_query(len(step_ids))
    params = {"run_id": run_id, "call_id": call_id} | {f"k{i}": step_id for i, step_id in enumerate(step_ids)}
    rows = messages.read(for_update(_LOCK_CALL), params, query)
    if not rows:
        return CheckpointedRun(False, None, set(), 0)
    row = rows[0]
    width = sum(len(model._meta.concrete_fields) for model in _HELD_MODELS)
    stored, known = row[width], {step_id for step_id, is_known in zip(step_ids, row[width + 1:]) if is_known}
    if row[0] is None:  # the call's id: the LEFT JOIN found no call
        return CheckpointedRun(True, None, known, stored)
    call, run, function = instances_of(_HELD_MODELS, row[:width])
    run.function, call.run = function, run
    return CheckpointedRun(True, call, known, stored)


@cache
def _held_query(step_count: int) -> str:
    return _HELD.format(columns=columns_of(_HELD_MODELS), steps=_STEPS, runs=_RUNS, functions=_FUNCTIONS, calls=_CALLS,
                        known="".join(_KNOWN.format(i=i) for i in range(step_count)))


def record_checkpointed_steps(
    messages: TwoMessages, call: PendingCall, new: list[RecordStep], stored: int,
    timings: dict[str, tuple[datetime, datetime]], now: datetime,
) -> int:
    """Memoize the run's `new` steps after its `stored` ones, show each in the run's history, and
    reset the call's attempts: the run moved on, so a later failure in the same call starts
    counting from the first attempt (it is still the same job: runs/pending_calls.py). The last
    message of the transaction that holds the call's row: it commits, with no new step too.
    Returns how many were stored."""
    if not new:
        messages.commit([], {})
        return 0
    # Each output serialized once (RecordStep.output_text): the step rows take its text, the
    # attempt rows the data's, cut from it.
    steps_sql, params = insert_values(
        [Step(run_id=call.run_id, step_id=r.step_id, name=r.name[:255], op=r.op, output=r.output, position=stored + i,
              created_at=now) for i, r in enumerate(new)], "s", _NEW_STEPS_TAIL,
        prepared=[{"output": r.output_text} for r in new])
    data = [_data_of(r) for r in new]
    attempts_sql, attempt_params = insert_values([
        StepAttempt(run_id=call.run_id, step_target=call.step_target, step_id=r.step_id, step_name=r.name[:255],
                    attempt=call.attempt, status_code=None, opcode=r.op, output=d,
                    started_at=timings.get(r.step_id, (now, now))[0], ended_at=timings.get(r.step_id, (now, now))[1],
                    is_checkpointed=True)
        for r, d in zip(new, data)
    ], "a", prepared=[_attempt_output(r, d) for r, d in zip(new, data)])
    statements, params = [steps_sql, attempts_sql], params | attempt_params
    reset = pending_calls.reset_attempts(call, stored)  # after the attempts: they keep the attempt that ran them
    if reset is not None:
        statements, params = statements + reset.statements, params | reset.params
    messages.commit(statements, params)
    return len(new)


def _attempt_output(record: RecordStep, data: object) -> dict[str, Any]:
    """The attempt row's output already serialized, when the step row's text is it or holds it
    (nothing when it does not: the row serializes it)."""
    text = record.stored_text_of(data)
    return {} if text is None else {"output": text}


def _data_of(record: RecordStep) -> object:
    output = record.output
    return output.get("data") if isinstance(output, dict) and record.op == "StepRun" else output


def record_checkpointed_side(call: PendingCall, side: list[Command]) -> None:
    """Defers added or aborted and step metadata reported with a checkpoint, kept as when they come
    in a call's answer (runs/lifecycle.py). A defer the SDK reports again changes nothing. Runs
    between the checkpoint's read and its write, in their transaction."""
    defers = [c for c in side if isinstance(c, (AddDefer, AbortDefer))]
    if defers:
        record_defers(call.run, defers)
    metadata = [c for c in side if isinstance(c, RecordMetadata)]
    if metadata:
        record_step_metadata(call.run_id, metadata, call.attempt)
