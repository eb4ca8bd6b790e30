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
from events.models import Event
from events.system import run_ended_events
from functions.models import Function
from runs import activity, ending, pending_calls, recording
from runs.creation import timeout_wait
from runs.decision_commands import (
    AbortDefer, AddDefer, Decision, FinishRun, InvokeFunction, OpenWait, RecordMetadata, RecordStep, ScheduleCall,
)
from runs.defers import deferred_schedule_events, record_defers
from runs.flow_control import gates
from runs.intake import event_rows_sql, store_events
from runs.run_metadata import record_step_metadata
from runs.signals import open_signal_wait
from runs.sql_batch import Together, run_together
from runs.invokes import start_invoked_run
from runs.models import ACTIVE_STATUSES, FlowAction, PendingCall, Run, RunStatus, Step, Wait, WaitKind
from runs.parallel import record_group_progress
from runs.wait_matching import equality_key


_RUN_TABLE = Run._meta.db_table
_START = f"UPDATE {_RUN_TABLE} SET status = %(running)s, started_at = %(now)s WHERE id = %(run_id)s AND status = %(queued)s"
_STARTED = f"SELECT status, started_at = %(now)s FROM {_RUN_TABLE} WHERE id = %(run_id)s"
# The same start, in the message of the claim of the run's first call, for a run that needs
# nothing taken or switched before it starts: its function says so (starts_when_claimed: no
# concurrency limit, no timeouts) and it holds no run-level slot.
_START_WITH_CLAIM = f"""UPDATE {_RUN_TABLE} SET status = %(running)s, started_at = %(now)s
    WHERE id = {pending_calls.CLAIMED_RUN} AND status = %(queued)s AND (run_slots IS NULL OR run_slots = '[]')
    AND function_id IN (SELECT id FROM {Function._meta.db_table} WHERE starts_when_claimed)"""


@dataclass(frozen=True)
class Claimed:
    call: PendingCall
    is_started: bool  # the claim started the run: this is its first call


def claim_and_start(call_id: int, owner: str, lease_seconds: float) -> Claimed | None:
    """Claim a call (runs/pending_calls.py); a queued run that needs nothing before it starts
    starts in the same message, one round trip instead of two. None: the call was not free."""
    now = timezone.now()
    start = Together([_START_WITH_CLAIM], {"running": RunStatus.RUNNING, "queued": RunStatus.QUEUED})
    call = pending_calls.claim_call(call_id, owner, lease_seconds, now, start)
    if call is None:
        return None
    run = call.run
    is_started = run.status == RunStatus.RUNNING and run.started_at == now
    if is_started:
        _started(run, now)
    return Claimed(call, is_started)


def start_run(run: Run) -> bool:
    """Move a queued run to running. False when the run is no longer active (cancelled meanwhile).
    One round trip: the start and the run's status after it (explicit SQL, as every call starts a run)."""
    now = timezone.now()
    params = {"run_id": run.id, "now": connection.ops.adapt_datetimefield_value(now),
              "running": RunStatus.RUNNING, "queued": RunStatus.QUEUED}
    row = run_together([_START], params, _STARTED)
    if row is not None and row[1]:
        _started(run, now)
        return True
    run.status = row[0] if row is not None else Run.objects.values_list("status", flat=True).get(id=run.id)
    return run.status == RunStatus.RUNNING


def _started(run: Run, now: datetime) -> None:
    run.status, run.started_at = RunStatus.RUNNING, now
    metrics.count("inngest_runs_started", run.function.slug)
    activity.run_started(run)
    if (run.function.config.get("timeouts") or {}):
        _switch_timeouts(run, now)


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
    # Steps were stored during the call (async checkpoints) that the decision did not see:
    # nothing was written; decide again with them.
    is_stale: bool = False
    next_call: PendingCall | None = None  # the same row, updated, when it is due now: call again


def apply_decision(
    call: PendingCall, owner: str, decision: Decision, attempt: recording.AttemptRow, lease_seconds: float, stack_size: int,
    steps_seen: int | None = None,
) -> Applied:
    """Carry out a decision in one transaction, guarded by the caller's lease on the call.

    `stack_size` is how many steps the run has memoized: new steps are stacked after them.
    `steps_seen`: when the call offered async checkpointing, the steps the decision saw; the
    decision is applied only if the run has no others (runs/recording.py).
    Every decision starts with the same write (runs/recording.py: the guard, the attempt row,
    the steps, the run's flags); a plain step is that write alone, which is atomic by itself.
    """
    now = timezone.now()
    run = call.run
    is_in_group = _is_parallel(call, decision)
    inline = _inline_schedule(call, decision, now)
    flags = (run.request_version if decision.request_version is None else decision.request_version, _no_immediate(call, decision))
    # Group members finish on several workers: their steps are counted under the run's row lock.
    written = recording.Recording(
        call, owner, now + timedelta(seconds=lease_seconds), attempt, decision.records,
        next_attempt=(inline.attempt, decision.calls_without_progress) if inline else None,
        flags=flags, stack_size=None if is_in_group else stack_size, steps_seen=steps_seen,
    )
    if _is_plain_step(decision, inline, is_in_group):
        outcome = recording.write(written)
        if outcome is not recording.Outcome.WRITTEN:
            return _not_written(outcome)
        _note_written(call, written)
        return Applied(next_call=call)
    if _is_last_answer(decision):
        return _record_and_finish(call, written, decision.finish, now)
    with transaction.atomic():
        outcome = recording.write(written)
        if outcome is not recording.Outcome.WRITTEN:
            return _not_written(outcome)
        _note_written(call, written)
        conflict = _open_waits(run, decision.waits)
        _record_side(run, decision, attempt.attempt)
        if conflict is not None:
            return _finish(call, FinishRun(RunStatus.FAILED, conflict), now)
        if decision.finish is not None:
            return _finish(call, decision.finish, now)
        schedules = _coalesce_discovery(run, decision)
        if is_in_group:
            schedules = _rediscover_finished(call.run_id, schedules)
        applied = _reschedule(call, owner, schedules, decision.calls_without_progress, now)
        _start_invokes(run, decision.invokes)
        return applied


def _no_immediate(call: PendingCall, decision: Decision) -> bool:
    """The run's is_immediate_execution_disabled after the decision: set by a parallel group; kept
    while one runs; cleared by a discovery call outside any (runs/parallel.py: after a sleep ended it)."""
    if decision.disable_immediate_execution is not None:
        return decision.disable_immediate_execution
    if call.step_target == "step" and not call.run.parallel_pending:
        return False
    return call.run.is_immediate_execution_disabled


def _inline_schedule(call: PendingCall, decision: Decision, now: datetime) -> ScheduleCall | None:
    """The decision's only next call when it is due now for the same target: this worker makes
    it at once on the same row, whose attempt and count the recording then updates."""
    if decision.finish is None and len(decision.schedules) == 1:
        (schedule,) = decision.schedules
        if schedule.due_at <= now and schedule.step_target == call.step_target:
            return schedule
    return None


def _is_plain_step(decision: Decision, inline: ScheduleCall | None, is_in_group: bool) -> bool:
    """The common case: at most one step recorded and the next call due now on this worker;
    nothing else (no wait, invoke, parallel group, end of the run or retry later)."""
    kinds = {type(command) for command in decision.commands}
    return inline is not None and not is_in_group and kinds <= {ScheduleCall, RecordStep} and len(decision.records) <= 1


def _is_last_answer(decision: Decision) -> bool:
    """The run's end with nothing to do before it (no wait to open, defer or metadata to record)."""
    return decision.finish is not None and not decision.waits and not decision.side_records


def _record_and_finish(call: PendingCall, written: recording.Recording, finish: FinishRun, now: datetime) -> Applied:
    """The run's last answer: its recording, the run's end and the events it emits in one
    message, a transaction of its own, when nothing listens to those events and it has no
    deferred run to start (most runs). Otherwise that message writes the recording alone, and
    the run ends in a transaction that also starts what listens."""
    run = call.run
    events = run_ended_events(run.id, run.function.slug, run.events or [], finish.status, finish.output, finish.reason)
    if _is_invoked(events):
        outcome = recording.write(written)  # its caller waits for its end
    else:
        end = ending.end_with_last_answer(
            run.id, finish.status, finish.output, now, [e.name for e in events],
            Together(*recording.statements_of(written)), Together(*event_rows_sql(events, ending.ENDED_HERE)),
        )
        if end.ended is not None:
            _note_written(call, written)
            _note_ended(run, finish.status, finish.output, now, end.ended)
            return Applied()
        outcome = recording.Outcome.WRITTEN if end.is_recorded else recording.unwritten_outcome(written)
    if outcome is not recording.Outcome.WRITTEN:
        return _not_written(outcome)
    _note_written(call, written)
    with transaction.atomic():
        finish_run(run, finish.status, finish.output, now, finish.reason)
    return Applied()


def _is_invoked(events: list[Event]) -> bool:
    """An invoked run's end resumes its caller through the correlation id, whatever the names."""
    return any(event.data.get("correlation_id") for event in events)


def _not_written(outcome: recording.Outcome) -> Applied:
    return Applied(is_stale=True) if outcome is recording.Outcome.STALE else Applied(is_lost=True)


def _note_written(call: PendingCall, written: recording.Recording) -> None:
    """The run and call in memory as the recording left them in the database."""
    call.run.request_version, call.run.is_immediate_execution_disabled = written.flags
    if written.next_attempt is not None:
        call.attempt, call.calls_without_progress = written.next_attempt
        if call.attempt == 0:
            call.job_stack = None  # a new job (runs/recording.py)


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


def _record_side(run: Run, decision: Decision, attempt: int) -> None:
    """Defers and step metadata riding along the decision's ops, before a RunComplete ends the run."""
    side = decision.side_records
    if not side:
        return
    record_defers(run, [c for c in side if isinstance(c, (AddDefer, AbortDefer))])
    record_step_metadata(run.id, [c for c in side if isinstance(c, RecordMetadata)], attempt)


def _open_waits(run: Run, waits: list[OpenWait]) -> dict | None:
    """Open the waits; the error the run fails with when a signal is taken, else None."""
    conflicts = [error for w in waits if w.kind == WaitKind.SIGNAL and (error := open_signal_wait(run, w))]
    waits = [w for w in waits if w.kind != WaitKind.SIGNAL]
    _open_event_waits(run, waits)
    return conflicts[0] if conflicts else None


def _open_event_waits(run: Run, waits: list[OpenWait]) -> None:
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


def _finish(call: PendingCall, finish: FinishRun, now: datetime) -> Applied:
    finish_run(call.run, finish.status, finish.output, now, finish.reason)
    return Applied()


def finish_run(run: Run, status: str, output: Any, now: datetime | None = None, reason: str = "") -> bool:
    """Move a run to a terminal status and drop its pending calls. False if it had already ended.
    `reason`: why its last call failed, for the failure event (runs/decision_commands.py FinishRun)."""
    now = now or timezone.now()
    events = run_ended_events(run.id, run.function.slug, run.events or [], status, output, reason)
    ended = ending.end_run(run.id, status, output, now, [event.name for event in events])
    if ended is None:
        return False  # already ended by someone else, who removed its pending calls
    _note_ended(run, status, output, now, ended)
    store_events(events, may_trigger=ended.is_triggering, may_resume=ended.is_awaited or _is_invoked(events))
    deferred = deferred_schedule_events(run)  # the run's defers still to start, as new runs (if it has any)
    if deferred:
        store_events(deferred)
    return True


def _note_ended(run: Run, status: str, output: Any, now: datetime, ended: ending.Ended) -> None:
    """The run in memory as it ended, and what follows the commit of its end."""
    run.status, run.output, run.ended_at, run.has_defers = status, output, now, ended.has_defers
    metrics.count("inngest_runs_ended", run.function.slug, status)
    activity.run_ended(run)
    if gates.run_level_slots(run):  # those it was created with, whatever the config is now
        transaction.on_commit(lambda: gates.release_run_slots(run))


def emit_run_ended(run: Run, reason: str = "") -> None:
    """function.finished/failed/cancelled and the run's deferred runs, in the transaction that ended it."""
    store_events(run_ended_events(run.id, run.function.slug, run.events or [], run.status, run.output, reason)
                 + deferred_schedule_events(run))


def _reschedule(call: PendingCall, owner: str, schedules: list[ScheduleCall], calls_without_progress: int, now: datetime) -> Applied:
    """Turn the decision's next calls into rows. A single call due now stays with this worker."""
    if len(schedules) == 1 and schedules[0].due_at <= now:
        return _continue_inline(call, schedules[0], calls_without_progress)
    PendingCall.objects.filter(id=call.id).delete()
    rows = [
        PendingCall(run_id=call.run_id, step_target=s.step_target, attempt=s.attempt, due_at=s.due_at, enqueued_at=now,
                    calls_without_progress=calls_without_progress,
                    job_stack=call.job_stack if s.attempt and s.step_target == call.step_target else None)  # a retry: the same job
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

def cancel_run(run: Run, by: str = "") -> bool:
    """Cancel an active run: no further call is made, and an answer in flight is discarded.
    `by` says who or what cancelled it, in words, for its page."""
    for attempt in range(3):
        try:
            with transaction.atomic():
                cancelled = finish_run(run, RunStatus.CANCELLED, None)
                if cancelled and by:
                    Run.objects.filter(id=run.id).update(cancelled_by=by[:255])
                    run.cancelled_by = by[:255]
                return cancelled
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
