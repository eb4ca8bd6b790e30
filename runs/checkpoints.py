"""Steps an SDK reports while a call is still running (async checkpointing, executor/checkpoints.py)."""
from __future__ import annotations

from datetime import datetime

from runs import pending_calls
from runs.decision_commands import AbortDefer, AddDefer, Command, RecordMetadata, RecordStep
from runs.defers import record_defers
from runs.run_metadata import record_step_metadata
from runs.models import PendingCall, Step, StepAttempt


def record_checkpointed_steps(
    call: PendingCall, new: list[RecordStep], stored: int, timings: dict[str, tuple[datetime, datetime]], now: datetime
) -> int:
    """Memoize the run's `new` steps after its `stored` ones, show each in the run's history, and
    reset the call's attempts: the run moved on, so a later failure in the same call starts
    counting from the first attempt (it is still the same job: runs/pending_calls.py). Runs inside
    the caller's transaction, which holds the call's row. Returns how many were stored."""
    if not new:
        return 0
    Step.objects.bulk_create(
        [Step(run_id=call.run_id, step_id=r.step_id, name=r.name[:255], op=r.op, output=r.output, position=stored + i,
              created_at=now) for i, r in enumerate(new)],
        ignore_conflicts=True,  # a concurrent report of the same step (the unique constraint decides)
    )
    StepAttempt.objects.bulk_create([
        StepAttempt(run_id=call.run_id, step_target=call.step_target, step_id=r.step_id, step_name=r.name[:255],
                    attempt=call.attempt, status_code=None, opcode=r.op, output=_data_of(r),
                    started_at=timings.get(r.step_id, (now, now))[0], ended_at=timings.get(r.step_id, (now, now))[1],
                    is_checkpointed=True)
        for r in new
    ])
    pending_calls.reset_attempts(call, stored)
    return len(new)


def _data_of(record: RecordStep) -> object:
    output = record.output
    return output.get("data") if isinstance(output, dict) and record.op == "StepRun" else output


def record_checkpointed_side(call: PendingCall, side: list[Command]) -> None:
    """Defers added or aborted and step metadata reported with a checkpoint, kept as when they come
    in a call's answer (runs/lifecycle.py). A defer the SDK reports again changes nothing."""
    defers = [c for c in side if isinstance(c, (AddDefer, AbortDefer))]
    if defers:
        record_defers(call.run, defers)
    metadata = [c for c in side if isinstance(c, RecordMetadata)]
    if metadata:
        record_step_metadata(call.run_id, metadata, call.attempt)
