"""What every decision writes first, as plain SQL that PostgreSQL and SQLite both run.

Renew the caller's lease on its call (the guard: a cancelled run has no call left, a call taken
over has another owner), insert the call's attempt row, memoize the steps it reported and note
the run's flags. Every statement after the guard checks that the guard renewed the lease (it
set the lease's new expiry), so a lost call changes nothing. When the SDK could have reported
steps to /v1/checkpoint during the call (executor/checkpoints.py), the guard also checks that
the run has as many steps stored as the decision saw: if it has more, nothing is written and
the caller decides again with them (STALE). This is the only code that writes these rows for
an applied decision (runs/lifecycle.py's apply_decision): a plain step is this and nothing
more, one round trip to PostgreSQL (runs/sql_batch.py); a run's last answer is this and the
run's end (runs/ending.py), one round trip too.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from django.db import connection

from core.json_text import dump_json
from runs.decision_commands import RecordStep
from runs.models import PendingCall, Run, Step, StepAttempt
from runs.sql_batch import for_update, run_together

_CALLS, _RUNS, _STEPS, _ATTEMPTS = (model._meta.db_table for model in (PendingCall, Run, Step, StepAttempt))
_RENEWED = "id = %(call_id)s AND lease_owner = %(owner)s AND lease_expires_at = %(lease_expires_at)s"
# True once the guard took effect: every statement after it, in the recording or after it in
# the same message, depends on it.
HELD = f"EXISTS (SELECT 1 FROM {_CALLS} WHERE {_RENEWED})"

# A next call that is not a retry (attempt 0) is a new job: it no longer names the old one's start.
_GUARD = f"""UPDATE {_CALLS} SET lease_expires_at = %(lease_expires_at)s, attempt = %(next_attempt)s,
    calls_without_progress = %(calls_without_progress)s,
    job_stack = CASE WHEN %(is_new_job)s THEN NULL ELSE job_stack END WHERE id = %(call_id)s AND lease_owner = %(owner)s"""
_LOCK_RUN = f"SELECT id FROM {_RUNS} WHERE id = %(run_id)s"
_ATTEMPT = f"""INSERT INTO {_ATTEMPTS}
    (run_id, step_target, step_id, step_name, attempt, status_code, opcode, output, error, started_at, ended_at,
     is_checkpointed)
    SELECT %(run_id)s, %(a_target)s, %(a_step_id)s, %(a_name)s, %(a_attempt)s, %(a_status)s, %(a_opcode)s,
        %(a_output)s, %(a_error)s, %(a_started_at)s, %(a_ended_at)s, %(a_checkpointed)s WHERE {HELD}"""
# A step recorded by an earlier attempt at this same call stays as it was.
_STEP = """INSERT INTO {table} (run_id, step_id, name, op, output, position, created_at)
    SELECT %(run_id)s, %(s{i}_id)s, %(s{i}_name)s, %(s{i}_op)s, %(s{i}_output)s, {position}, %(now)s WHERE {held}
    ON CONFLICT (run_id, step_id) DO NOTHING"""
_FLAGS = f"""UPDATE {_RUNS} SET request_version = %(request_version)s,
    is_immediate_execution_disabled = %(no_immediate)s WHERE id = %(run_id)s AND {HELD}"""
_STEPS_SEEN = f" AND (SELECT count(*) FROM {_STEPS} WHERE run_id = %(run_id)s) = %(steps_seen)s"
_IS_WRITTEN = f"SELECT count(*) FROM {_CALLS} WHERE {_RENEWED}"


@dataclass(frozen=True)
class AttemptRow:
    """The values of the attempt row (runs_stepattempt) a decision writes: what was asked, what
    came back, and when. Built on every call, so a plain record rather than a model instance,
    which costs several times as much to build and is never saved here (the SQL below writes it)."""

    run_id: str
    step_target: str
    attempt: int
    started_at: datetime
    ended_at: datetime
    status_code: int | None = None  # None: no HTTP answer
    step_id: str = ""  # the step the answer was about
    step_name: str = ""
    opcode: str = ""
    output: Any = None
    error: Any = None
    is_checkpointed: bool = False  # reported to /v1/checkpoint rather than answered to a call


class Outcome(Enum):
    WRITTEN = "written"
    LOST = "lost"  # the caller no longer holds the call: nothing written
    STALE = "stale"  # steps were stored during the call (async checkpoints): nothing written


@dataclass(frozen=True)
class Recording:
    """The rows one decision writes before anything else, with the lease they need."""

    call: PendingCall
    owner: str
    lease_expires_at: datetime
    attempt: AttemptRow
    records: list[RecordStep]
    # The call's attempt and count of calls without progress from now on (the next call of the
    # same target continues on this row), or None to leave them as they are.
    next_attempt: tuple[int, int] | None
    flags: tuple[int, bool]  # the run's request_version and is_immediate_execution_disabled after it
    stack_size: int | None  # steps memoized before these; None: count them under the run's lock (parallel groups)
    # The run's stored steps the decision saw, when the call offered async checkpointing; None: not checked.
    steps_seen: int | None = None


def write(recording: Recording) -> Outcome:
    """Write the recording, or nothing when the caller no longer holds the call or the steps
    it decided on are no longer all the run has."""
    statements, params = statements_of(recording)
    written = run_together(statements, params, _IS_WRITTEN)
    if written is not None and written[0] > 0:
        return Outcome.WRITTEN
    return unwritten_outcome(recording)


def unwritten_outcome(recording: Recording) -> Outcome:
    """Why a recording its message did not write was not written: its call was lost, or (when it
    checked the run's steps) it was stale. Rare: one more query, only when the steps were checked."""
    if recording.steps_seen is None:
        return Outcome.LOST
    is_held = PendingCall.objects.filter(id=recording.call.id, lease_owner=recording.owner).exists()
    return Outcome.STALE if is_held else Outcome.LOST


def statements_of(recording: Recording) -> tuple[list[str], dict[str, Any]]:
    """The recording's statements, to send alone (`write`) or first in a message (a run's last
    answer and its end, runs/lifecycle.py); each statement after the guard is conditioned on HELD."""
    call, attempt, run = recording.call, recording.attempt, recording.call.run
    next_attempt, calls_without_progress = recording.next_attempt or (call.attempt, call.calls_without_progress)
    at = connection.ops.adapt_datetimefield_value
    params: dict[str, Any] = {
        "call_id": call.id, "owner": recording.owner, "run_id": call.run_id, "now": at(attempt.ended_at),
        "lease_expires_at": at(recording.lease_expires_at), "next_attempt": next_attempt,
        "calls_without_progress": calls_without_progress,
        "is_new_job": recording.next_attempt is not None and next_attempt == 0,
        "a_target": attempt.step_target, "a_step_id": attempt.step_id, "a_name": attempt.step_name[:255],
        "a_attempt": attempt.attempt, "a_status": attempt.status_code, "a_opcode": attempt.opcode,
        "a_output": _attempt_output_text(attempt, recording.records), "a_error": _json_or_null(attempt.error),
        "a_started_at": at(attempt.started_at), "a_ended_at": at(attempt.ended_at), "a_checkpointed": attempt.is_checkpointed,
        "request_version": recording.flags[0], "no_immediate": recording.flags[1], "steps_seen": recording.steps_seen,
    }
    statements = [_GUARD if recording.steps_seen is None else _GUARD + _STEPS_SEEN]
    if recording.stack_size is None:
        statements += for_update(_LOCK_RUN)  # group members finish on several workers: stack them one at a time
    statements.append(_ATTEMPT)
    for i, record in enumerate(recording.records):
        # (run_id cast to the type the INSERT gives it, its column's: a prepared statement gives a parameter one type)
        if recording.stack_size is None:
            position = f"(SELECT count(*) FROM {_STEPS} WHERE run_id = CAST(%(run_id)s AS varchar))"
        else:
            position, params[f"s{i}_position"] = f"%(s{i}_position)s", recording.stack_size + i
        statements.append(_STEP.format(table=_STEPS, i=i, position=position, held=HELD))
        params |= {f"s{i}_id": record.step_id, f"s{i}_name": record.name[:255], f"s{i}_op": record.op,
                   f"s{i}_output": record.output_text}
    if recording.flags != (run.request_version, run.is_immediate_execution_disabled):
        statements.append(_FLAGS)
    return statements, params


def _attempt_output_text(attempt: AttemptRow, records: list[RecordStep]) -> str | None:
    """The attempt's output as stored: a finished step's attempt stores the step's data, whose
    text its record already holds (RecordStep.stored_text_of)."""
    for record in records:
        text = record.stored_text_of(attempt.output)
        if text is not None:
            return text
    return _json_or_null(attempt.output)


def _json_or_null(value: Any) -> str | None:
    """A JSON value as the models store it (core/json_text.py): None is SQL NULL."""
    return None if value is None else dump_json(value)
