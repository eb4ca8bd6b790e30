"""Every change of a running run's state: applying decisions, ending, cancelling (claiming and
releasing calls is runs/pending_calls.py's).

Each function is one short transaction with guarded updates: a zero-row update means another
worker (or a cancellation) got there first, and the caller stops.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone

from core import metrics
from core.json_text import dump_json
from events.system import run_ended_events
from runs import pending_calls
from runs.creation import timeout_wait
from runs.decision_commands import Decision, FinishRun, InvokeFunction, OpenWait, RecordStep, ScheduleCall
from runs.flow_control import gates
from runs.intake import store_events
from runs.invokes import start_invoked_run
from runs.models import ACTIVE_STATUSES, FlowAction, PendingCall, Run, RunStatus, Step, StepAttempt, Wait, WaitKind, sources_of
from runs.parallel import record_group_progress
from runs.wait_matching import equality_key


def start_run(run: Run) -> bool:
    """Move a queued run to running. False when the run is no longer active (cancelled meanwhile)."""
    now = timezone.now()
    if Run.objects.filter(id=run.id, status=RunStatus.QUEUED).update(status=RunStatus.RUNNING, started_at=now):
        run.status, run.started_at = RunStatus.RUNNING, now
        metrics.count("inngest_runs_started", run.function.slug)
        if (run.function.config.get("timeouts") or {}):
            _switch_timeouts(run, now)
        return True
    run.status = Run.objects.values_list("status", flat=True).get(id=run.id)
    return run.status == RunStatus.RUNNING


def _switch_timeouts(run: Run, now: datetime) -> None:
    """The start timeout no longer applies; the finish timeout starts counting (§4.7)."""
    Wait.objects.filter(run=run, kind=WaitKind.TIMEOUT, step_id="timeout-start").delete()
    finish = timeout_wait(run, "finish", now)
    if finish is not None:
        finish.save()


# --- applying a decision ---------------------------------------------------------------------

@dataclass(frozen=True)
class Applied:
    """What became of the call after a decision was applied."""

    is_lost: bool = False  # the call was cancelled or taken over meanwhile: stop, change nothing
    next_call: PendingCall | None = None  # the same row, updated, when it is due now: call again


def apply_decision(
    call: PendingCall, owner: str, decision: Decision, attempt: StepAttempt, lease_seconds: float, stack_size: int
) -> Applied:
    """Carry out a decision in one transaction, guarded by the caller's lease on the call.

    `stack_size` is how many steps the run has memoized: new steps are stacked after them.
    """
    now = timezone.now()
    if _is_plain_step(call, decision, now) and connection.vendor == "postgresql":
        return _apply_plain_step(call, owner, decision, attempt, lease_seconds, stack_size, now)
    with transaction.atomic():
        # Renewing the lease is also the guard: a cancelled run has no pending call left.
        if not PendingCall.objects.filter(id=call.id, lease_owner=owner).update(
            lease_expires_at=now + timedelta(seconds=lease_seconds)
        ):
            return Applied(is_lost=True)
        attempt.save()
        is_in_group = _is_parallel(call, decision)
        if is_in_group:
            # Group members finish on several workers: stack them under the run's row lock.
            Run.objects.select_for_update().filter(id=call.run_id).values_list("id").first()
            stack_size = Step.objects.filter(run_id=call.run_id).count()
        _record_steps(call.run, decision.records, stack_size)
        _open_waits(call.run, decision.waits)
        _update_run_flags(call.run, decision)
        if decision.finish is not None:
            return _finish(call, decision.finish, now)
        schedules = _coalesce_discovery(call.run, decision)
        if is_in_group:
            schedules = _rediscover_finished(call.run_id, schedules)
        applied = _reschedule(call, owner, schedules, decision.calls_without_progress, now)
        _start_invokes(call.run, decision.invokes)
        return applied


def _is_plain_step(call: PendingCall, decision: Decision, now: datetime) -> bool:
    """The common case: at most one step recorded and the next discovery due now, on this
    worker; nothing else (no wait, invoke, parallel group, end of the run or retry later)."""
    kinds = [type(command) for command in decision.commands]
    return (
        kinds.count(ScheduleCall) == 1 and kinds.count(RecordStep) <= 1 and len(kinds) == kinds.count(ScheduleCall) + kinds.count(RecordStep)
        and decision.schedules[0].due_at <= now and decision.schedules[0].step_target == "step"
        and call.step_target == "step" and not call.run.parallel_pending
    )


_PLAIN_STEP_SQL = f"""
WITH guard AS (
    UPDATE {PendingCall._meta.db_table}
    SET lease_expires_at = %(lease_expires_at)s, attempt = %(next_attempt)s,
        calls_without_progress = %(calls_without_progress)s
    WHERE id = %(call_id)s AND lease_owner = %(owner)s
    RETURNING run_id
), attempt AS (
    INSERT INTO {StepAttempt._meta.db_table}
        (run_id, step_target, step_id, step_name, attempt, status_code, opcode, output, error, started_at, ended_at)
    SELECT run_id, %(step_target)s, %(step_id)s, %(step_name)s, %(attempt)s, %(status_code)s, %(opcode)s,
           %(output)s, %(error)s, %(started_at)s, %(ended_at)s
    FROM guard
), step AS (
    INSERT INTO {Step._meta.db_table} (run_id, step_id, name, op, output, position, created_at)
    SELECT run_id, %(record_id)s, %(record_name)s, %(record_op)s, %(record_output)s, %(position)s, %(ended_at)s
    FROM guard WHERE %(has_record)s
    ON CONFLICT (run_id, step_id) DO NOTHING
), flags AS (
    UPDATE {Run._meta.db_table}
    SET request_version = %(request_version)s, is_immediate_execution_disabled = %(is_immediate_execution_disabled)s
    WHERE id = (SELECT run_id FROM guard) AND %(has_new_flags)s
)
SELECT count(*) FROM guard
"""


def _apply_plain_step(
    call: PendingCall, owner: str, decision: Decision, attempt: StepAttempt, lease_seconds: float, stack_size: int, now: datetime
) -> Applied:
    """What the transaction below does for a plain step, as one PostgreSQL statement: renew the
    lease (the guard), write the call's history row, memoize the step and note the run's flags.
    A single statement is atomic without BEGIN and COMMIT; this is the path most calls take."""
    run, (schedule,) = call.run, decision.schedules
    record = decision.records[0] if decision.records else None
    request_version = run.request_version if decision.request_version is None else decision.request_version
    no_immediate = run.is_immediate_execution_disabled if decision.disable_immediate_execution is None else decision.disable_immediate_execution
    params = {
        "lease_expires_at": now + timedelta(seconds=lease_seconds), "next_attempt": schedule.attempt,
        "calls_without_progress": decision.calls_without_progress, "call_id": call.id, "owner": owner,
        "step_target": attempt.step_target, "step_id": attempt.step_id, "step_name": attempt.step_name,
        "attempt": attempt.attempt, "status_code": attempt.status_code, "opcode": attempt.opcode,
        "output": _json_or_null(attempt.output), "error": _json_or_null(attempt.error),
        "started_at": attempt.started_at, "ended_at": attempt.ended_at,
        "has_record": record is not None, "record_id": record.step_id if record else "",
        "record_name": record.name[:255] if record else "", "record_op": record.op if record else "",
        "record_output": _json_or_null(record.output if record else None), "position": stack_size,
        "request_version": request_version, "is_immediate_execution_disabled": no_immediate,
        "has_new_flags": (request_version, no_immediate) != (run.request_version, run.is_immediate_execution_disabled),
    }
    with connection.cursor() as cursor:
        cursor.execute(_PLAIN_STEP_SQL, params)
        (held,) = cursor.fetchone()
    if not held:
        return Applied(is_lost=True)
    run.request_version, run.is_immediate_execution_disabled = request_version, no_immediate
    call.attempt, call.calls_without_progress = schedule.attempt, decision.calls_without_progress
    return Applied(next_call=call)


def _json_or_null(value: Any) -> str | None:
    """A JSON value as the models store it (core/json_text.py): None is SQL NULL."""
    return None if value is None else dump_json(value)


def _is_parallel(call: PendingCall, decision: Decision) -> bool:
    return decision.parallel is not None or bool(call.run.parallel_pending) or call.step_target != "step"


def _coalesce_discovery(run: Run, decision: Decision) -> list[ScheduleCall]:
    """The decision's next calls, less a discovery call that must wait for a parallel group."""
    if decision.parallel is None and not run.parallel_pending:
        return decision.schedules  # not in a parallel group (the common case): no lock taken
    plan = decision.parallel
    progress = record_group_progress(
        run.id, [r.step_id for r in decision.records], plan.step_ids if plan else (), plan.mode if plan else ""
    )
    run.parallel_pending = list(progress.pending)
    if progress.is_immediate_execution_disabled is not None:
        run.is_immediate_execution_disabled = progress.is_immediate_execution_disabled
    if progress.may_discover:
        return decision.schedules
    return [s for s in decision.schedules if s.step_target != "step"]


def _rediscover_finished(run_id: str, schedules: list[ScheduleCall]) -> list[ScheduleCall]:
    """Race mode: a discovery that started before a parallel step finished on another worker
    plans that step again. It is done; what the run needs is a discovery that sees it."""
    targets = [s.step_target for s in schedules if s.step_target != "step"]
    finished = set(Step.objects.filter(run_id=run_id, step_id__in=targets).values_list("step_id", flat=True)) if targets else set()
    if not finished:
        return schedules
    kept = [s for s in schedules if s.step_target not in finished]
    if not any(s.step_target == "step" for s in kept):
        kept.append(ScheduleCall("step", 0, min(s.due_at for s in schedules if s.step_target in finished)))
    return kept


def _record_steps(run: Run, records: list[RecordStep], stack_size: int) -> None:
    # A step recorded by an earlier attempt at this same call stays as it was: ON CONFLICT DO NOTHING.
    Step.objects.bulk_create(
        [
            Step(run=run, step_id=r.step_id, name=r.name[:255], op=r.op, output=r.output, position=stack_size + i)
            for i, r in enumerate(records)
        ],
        ignore_conflicts=True,
    )


def _open_waits(run: Run, waits: list[OpenWait]) -> None:
    trigger = (run.events or [{}])[0]
    Wait.objects.bulk_create(
        [
            Wait(run=run, kind=w.kind, step_id=w.step_id, step_name=w.name[:255], event_name=w.event_name,
                 expression=w.expression, expires_at=w.expires_at,
                 **dict(zip(("match_path", "match_value"), equality_key(w.expression, trigger))))
            for w in waits
        ],
        ignore_conflicts=True,  # the same wait reported again by a repeated call
    )
    for wait in waits:
        pending_calls.tick_at_on_commit(wait.expires_at)


def _start_invokes(run: Run, invokes: list[InvokeFunction]) -> None:
    for invoke in invokes:
        start_invoked_run(run, invoke)


def _update_run_flags(run: Run, decision: Decision) -> None:
    changes: dict[str, Any] = {}
    if decision.request_version is not None and decision.request_version != run.request_version:
        changes["request_version"] = decision.request_version
    if decision.disable_immediate_execution is not None and decision.disable_immediate_execution != run.is_immediate_execution_disabled:
        changes["is_immediate_execution_disabled"] = decision.disable_immediate_execution
    if changes:
        Run.objects.filter(id=run.id).update(**changes)
        for field, value in changes.items():
            setattr(run, field, value)


def _finish(call: PendingCall, finish: FinishRun, now: datetime) -> Applied:
    finish_run(call.run, finish.status, finish.output, now)
    return Applied()


def finish_run(run: Run, status: str, output: Any, now: datetime | None = None) -> bool:
    """Move a run to a terminal status and drop its pending calls. False if it had already ended."""
    now = now or timezone.now()
    # Lock order: a worker applying a decision holds its pending call's row, then updates the
    # run; take the run's pending calls first here too, so a cancel and a worker never deadlock.
    list(PendingCall.objects.select_for_update().filter(run_id=run.id).order_by("id").values_list("id", flat=True))
    changed = Run.objects.filter(id=run.id, status__in=sources_of(status)).update(
        status=status, output=output, ended_at=now
    )
    if not changed:
        return False  # already ended by someone else, who removed its pending calls
    PendingCall.objects.filter(run_id=run.id).delete()
    Wait.objects.filter(run_id=run.id).delete()
    run.status, run.output, run.ended_at = status, output, now
    metrics.count("inngest_runs_ended", run.function.slug, status)
    emit_run_ended(run)
    if gates.run_level_slots(run):  # those it was created with, whatever the config is now
        transaction.on_commit(lambda: gates.release_run_slots(run))
    return True


def emit_run_ended(run: Run) -> None:
    """function.finished/failed/cancelled, in the transaction that ended the run."""
    store_events(run_ended_events(run.id, run.function.slug, run.events or [], run.status, run.output))


def _reschedule(call: PendingCall, owner: str, schedules: list[ScheduleCall], calls_without_progress: int, now: datetime) -> Applied:
    """Turn the decision's next calls into rows. A single call due now stays with this worker."""
    if len(schedules) == 1 and schedules[0].due_at <= now:
        return _continue_inline(call, schedules[0], calls_without_progress)
    PendingCall.objects.filter(id=call.id).delete()
    rows = [
        PendingCall(run_id=call.run_id, step_target=s.step_target, attempt=s.attempt, due_at=s.due_at, enqueued_at=now,
                    calls_without_progress=calls_without_progress)
        for s in schedules
    ]
    # A target that already has a pending call (a step planned twice) keeps the one it has.
    PendingCall.objects.bulk_create(rows, ignore_conflicts=True)
    targets = [s.step_target for s in schedules]
    for call_id, due_at in PendingCall.objects.filter(run_id=call.run_id, step_target__in=targets, lease_owner="").values_list("id", "due_at"):
        pending_calls.enqueue_calls_on_commit([call_id], due_at=due_at)
    return Applied()


def _continue_inline(call: PendingCall, schedule: ScheduleCall, calls_without_progress: int) -> Applied:
    """The row becomes the next call and stays with this worker. When the run already has a call
    for that target, that one is kept and this one ends: in race mode a discovery plans again a
    step whose call is in flight elsewhere, and a step that finishes while a discovery is
    pending finds it there (pending_call_unique)."""
    row = PendingCall.objects.filter(id=call.id)
    changes = {"step_target": schedule.step_target, "attempt": schedule.attempt, "calls_without_progress": calls_without_progress}
    if schedule.step_target != call.step_target:
        try:
            with transaction.atomic():  # a savepoint: the collision must not undo the rest of the decision
                row.update(**changes)
        except IntegrityError:
            row.delete()
            return Applied()
    elif (schedule.attempt, calls_without_progress) != (call.attempt, call.calls_without_progress):
        row.update(**changes)
    call.step_target, call.attempt, call.calls_without_progress = schedule.step_target, schedule.attempt, calls_without_progress
    return Applied(next_call=call)


# --- cancelling ------------------------------------------------------------------------------

def cancel_run(run: Run) -> bool:
    """Cancel an active run: no further call is made, and an answer in flight is discarded."""
    for attempt in range(3):
        try:
            with transaction.atomic():
                return finish_run(run, RunStatus.CANCELLED, None)
        except OperationalError:
            # Chosen as a deadlock victim (PostgreSQL rolled this transaction back): the other
            # one has finished, so try again, unless an outer transaction is now unusable.
            if transaction.get_connection().in_atomic_block or attempt == 2:
                raise
    return False


def cancel_runs_for_singleton(newcomer: Run, now: datetime) -> None:
    """Singleton `cancel` mode (§6.9): the active run holding the newcomer's key is cancelled."""
    holders = Run.objects.select_related("function").filter(
        function_id=newcomer.function_id, singleton_key=newcomer.singleton_key, status__in=ACTIVE_STATUSES
    ).exclude(id=newcomer.id)
    for holder in holders:
        if finish_run(holder, RunStatus.CANCELLED, None, now):
            Run.objects.filter(id=holder.id).update(
                flow_action=FlowAction.CANCELLED, flow_reason=f"singleton: replaced by run {newcomer.id}"
            )


def is_active(run: Run) -> bool:
    return run.status in ACTIVE_STATUSES
