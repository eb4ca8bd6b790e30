"""A worker's turn at a run: claim a due call, call the SDK, apply the decision, and keep going.

While the SDK answers with a step to memoize and a discovery call due at once, the same worker
calls again without going back through the broker (Inngest's immediate execution), until the
run needs to wait (retry backoff, sleep, parallel fan-out) or its time slice is used up.
"""
from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.db.models.functions import Length
from django.utils import timezone
from ulid import ULID

from core import metrics
from core.json_text import dump_json
from executor import checkpoints
from executor.canonical_body import RunParts
from executor.decision import DISCOVERY, INVALID_RESPONSE, Clock, decide, decide_failure
from executor.gateway import with_gateway_results
from executor.leases import lease_keeper, new_owner_token
from executor.log_context import about_run, set_step
from executor.limits import configured_limits
from executor.responses import CallView, SdkResponse
from executor.transport import CallRequest, EndpointCall, call_function
from functions.endpoints import is_endpoint
from runs import lifecycle, pending_calls
from runs.decision_commands import AbortDefer, AddDefer, Decision, RecordStep
from runs.defers import defers_for_call
from runs.flow_control import gates
from runs.models import PendingCall, Run, RunStatus, Step
from runs.recording import AttemptRow

log = logging.getLogger(__name__)
NOT_RECORDED = "InngestErrResponseNotRecorded"


@dataclass
class RunMemo:
    """The memoized steps of a run as the SDK gets them, kept in memory while a worker holds it."""

    steps: dict[str, object] = field(default_factory=dict)
    stack: list[str] = field(default_factory=list)
    state_bytes: int = 0  # the length of the run's events and step outputs as stored (executor/limits.py)
    defers: dict[str, dict[str, bool]] = field(default_factory=dict)  # the call body's `defers`
    # Its events and step outputs as signed bodies carry them, canonicalized once for the run's calls.
    parts: RunParts = field(default_factory=RunParts)

    @classmethod
    def empty(cls, run: Run) -> "RunMemo":
        """The memo of a run before its first call: its events, no step."""
        return cls(state_bytes=len(dump_json(run.events or [])))

    @classmethod
    def load(cls, run: Run) -> "RunMemo":
        memo = cls.empty(run)
        memo.defers = defers_for_call(run)
        rows = Step.objects.filter(run=run).order_by("position").values_list("step_id", "output", Length("output"))
        for step_id, output, size in rows:
            memo.steps[step_id] = output
            memo.stack.append(step_id)
            memo.state_bytes += size or 0
        return memo

    def reload(self, run: Run) -> None:
        fresh = RunMemo.load(run)
        self.steps, self.stack, self.state_bytes, self.defers = fresh.steps, fresh.stack, fresh.state_bytes, fresh.defers

    def add(self, record: RecordStep) -> None:
        if record.step_id not in self.steps:
            self.stack.append(record.step_id)
            self.state_bytes += record.output_bytes
        self.steps[record.step_id] = record.output


def run_call(call_id: int) -> None:
    owner = new_owner_token()
    claimed = lifecycle.claim_and_start(call_id, owner, settings.INNGEST_LEASE_SECONDS)
    if claimed is None:
        _requeue_if_early(call_id)
        return
    call = claimed.call
    with about_run(call.run_id, call.run.function.slug, call.step_target):
        slots = gates.slots_for(call.run, call.id, settings.INNGEST_LEASE_SECONDS)
        if slots and lifecycle.is_active(call.run):
            full = gates.take_slots(call, slots)
            if full is not None:
                gates.park(call, owner, full)
                log.info("parked: no free concurrency slot")
                return
        lease_keeper.hold(call.id, owner, slots)
        try:
            _drive(call, owner, claimed.is_started)
        finally:
            lease_keeper.release(call.id, owner)
            # Run-level slots stay with the run until it ends (lifecycle.finish_run gives them back).
            gates.give_back([slot for slot in slots if not slot.is_per_run])


def _requeue_if_early(call_id: int) -> None:
    """A countdown message that arrived before the call is due goes back with the remainder."""
    due_at = pending_calls.unclaimed_due_at(call_id)
    if due_at is not None and due_at > timezone.now():
        pending_calls.send_calls([call_id], (due_at - timezone.now()).total_seconds())


def _drive(call: PendingCall, owner: str, is_started: bool) -> None:
    """`is_started`: the claim started the run (runs/lifecycle.py claim_and_start)."""
    run = call.run
    is_queued = run.status == RunStatus.QUEUED
    # A running run as the claim read it has nothing to start; a cancellation since then drops
    # the call, and the applier's guard discards its answer.
    if not lifecycle.is_active(run) or (is_queued and not lifecycle.start_run(run)):
        pending_calls.drop_call(call)
        return
    # A run that was queued has never been called (its first call is the only one it has, and
    # this worker holds it): nothing is memoized yet, but for the steps a rerun from a step keeps.
    is_first = is_queued or is_started
    memo = RunMemo.empty(run) if is_first and not run.rerun_from_step else RunMemo.load(run)
    deadline = time.monotonic() + settings.INNGEST_TIME_SLICE_SECONDS
    while True:
        applied = _call_once(call, owner, memo)
        if applied.is_lost or applied.next_call is None:
            return
        call = applied.next_call
        if time.monotonic() >= deadline:
            pending_calls.release_call(call, owner)
            return
        # No re-check of the lease here: a cancellation that lands between two calls is caught
        # by the guard of the next apply_decision, which discards that call's answer.


def _call_once(call: PendingCall, owner: str, memo: RunMemo) -> lifecycle.Applied:
    run, function = call.run, call.run.function
    set_step(call.step_target)
    lease_keeper.start_call(call.id)
    started_at = timezone.now()
    request = _build_request(call, memo)
    response = call_function(request)
    if response.status == 206:
        lease_keeper.start_call(call.id)  # the requests of step.fetch / step.ai.infer get a deadline of their own
        response = with_gateway_results(response)
    answer = _Answer(response, started_at, timezone.now(), is_checkpointable=bool(request.queue_item_id))
    clock = Clock(now=answer.ended_at, jitter_fraction=random.random(), linear_retry_seconds=settings.INNGEST_RETRY_INTERVAL)
    # A targeted call is part of a parallel group whose other members finish elsewhere; so may
    # a discovery made while the group is running (race mode).
    was_group_member = call.step_target != "step" or bool(run.parallel_pending)
    decision, applied = _decide_and_apply(call, owner, memo, answer, clock)
    _count_call(function.slug, call, decision, response, (answer.ended_at - started_at).total_seconds())
    if applied.is_lost:
        log.info("run %s: call %s was cancelled or taken over while in flight; answer discarded", run.id, call.id)
        return applied
    if was_group_member or decision.parallel is not None:
        memo.reload(run)  # other members of the group may have finished on other workers
    else:
        for record in decision.records:
            memo.add(record)
    if any(isinstance(c, (AddDefer, AbortDefer)) for c in decision.side_records):
        memo.defers = defers_for_call(run)  # as recorded (caps applied): the next call tells the SDK
    _log_call(run, call, decision.opcode, decision.step_name, response.status)
    return applied


@dataclass(frozen=True)
class _Answer:
    response: SdkResponse
    started_at: datetime
    ended_at: datetime
    is_checkpointable: bool  # the call offered async checkpointing: the SDK may have stored steps during it


def _decide_and_apply(
    call: PendingCall, owner: str, memo: RunMemo, answer: _Answer, clock: Clock
) -> tuple[Decision, lifecycle.Applied]:
    """Decide on the answer and apply the decision. Steps the SDK reported to /v1/checkpoint
    during the call are stored but not in the memo; the decision must see them (limits,
    progress) and the next call must send them back. The write finds them (it checks the
    count it was decided on, in the same message, runs/recording.py) and writes nothing: the
    memo and the call's attempts (the endpoint reset them) are then read again and the
    decision made again, without that check (the run had all its checkpointed steps then)."""
    steps_seen = len(memo.stack) if answer.is_checkpointable else None
    while True:
        view = _view(call, memo)
        decision = _decide(view, answer.response, clock)
        attempt = _attempt_row(call, decision, answer.response, answer.started_at, answer.ended_at)
        applied = apply_or_retry(call, owner, decision, attempt, view, clock, len(memo.stack), steps_seen)
        if not applied.is_stale:
            return decision, applied
        _take_in_checkpoints(call, memo)
        steps_seen = None


def _take_in_checkpoints(call: PendingCall, memo: RunMemo) -> None:
    """The run as the checkpoints left it: its memo, the call's attempts (the endpoint reset
    them, executor/checkpoints.py), and the defers they took in, which the next call tells the
    SDK about (the run's `has_defers` may have been set by them)."""
    row = PendingCall.objects.filter(id=call.id).values_list("attempt", "calls_without_progress", "job_stack",
                                                             "run__has_defers").first()
    if row is not None:
        call.attempt, call.calls_without_progress, call.job_stack, call.run.has_defers = row
    memo.reload(call.run)


def _view(call: PendingCall, memo: RunMemo) -> CallView:
    run = call.run
    return CallView(
        call.step_target, call.attempt, run.function.max_attempts, run.is_immediate_execution_disabled,
        steps_recorded=len(memo.stack), memoized=memo.steps.keys(), state_bytes=memo.state_bytes,
        calls_without_progress=call.calls_without_progress, limits=configured_limits(),
    )



def _decide(view: CallView, response: SdkResponse, clock: Clock) -> Decision:
    """The decision; an answer the decision cannot handle (whatever it raises) is a failed call."""
    try:
        return decide(view, response, clock)
    except Exception as exc:  # noqa: BLE001 - recorded as the attempt's error, retried per policy
        log.exception("the app's answer could not be read")
        return decide_failure(view, clock, _exception_error(INVALID_RESPONSE, "The app's answer cannot be used", exc))


def apply_or_retry(
    call: PendingCall, owner: str, decision: Decision, attempt: AttemptRow, view: CallView, clock: Clock, stack_size: int,
    steps_seen: int | None = None,
) -> lifecycle.Applied:
    """Apply the decision; if that fails, record the attempt with the reason and retry per policy.

    A database outage is not the answer's fault: the lease then runs out and the sweeper calls
    again, so nothing the app answered is lost and no attempt is spent."""
    lease = settings.INNGEST_LEASE_SECONDS
    try:
        return lifecycle.apply_decision(call, owner, decision, attempt, lease, stack_size, steps_seen)
    except (OperationalError, InterfaceError):
        raise
    except Exception as exc:  # noqa: BLE001 - DataError, a value no column takes, a bug: recorded, never a loop
        log.exception("the app's answer could not be recorded")
        # Nothing of it was committed; what it changed in memory must not steer the retry either.
        call.step_target, call.attempt, call.calls_without_progress = view.step_target, view.attempt, view.calls_without_progress
        call.run.refresh_from_db()
        failure = decide_failure(view, clock, _exception_error(NOT_RECORDED, "The app's answer could not be recorded", exc))
        failed = AttemptRow(
            run_id=attempt.run_id, step_target=attempt.step_target, attempt=attempt.attempt, status_code=attempt.status_code,
            opcode=failure.opcode, error=failure.error, started_at=attempt.started_at, ended_at=attempt.ended_at,
        )
        return lifecycle.apply_decision(call, owner, failure, failed, lease, stack_size, steps_seen)


def _exception_error(name: str, what: str, exc: Exception) -> dict[str, str]:
    return {"name": name, "message": f"{what}: {type(exc).__name__}: {str(exc)[:1000]}"}


def _attempt_row(call: PendingCall, decision: Decision, response: SdkResponse, started_at: datetime, ended_at: datetime) -> AttemptRow:
    return AttemptRow(
        run_id=call.run_id, step_target=call.step_target, step_id=decision.step_id, step_name=decision.step_name[:255],
        attempt=call.attempt, status_code=response.status, opcode=decision.opcode,
        output=decision.output, error=decision.error or _transport_error(response),
        started_at=started_at, ended_at=ended_at,
    )


def _count_call(function: str, call: PendingCall, decision: Decision, response: SdkResponse, seconds: float) -> None:
    metrics.observe_call(function, seconds)
    metrics.count("inngest_step_calls", function, decision.opcode or (f"http_{response.status}" if response.status else "no_answer"))
    if any(s.step_target == call.step_target and s.attempt == call.attempt + 1 for s in decision.schedules):
        metrics.count("inngest_step_retries", function)


def _build_request(call: PendingCall, memo: RunMemo) -> CallRequest:
    run, function = call.run, call.run.function
    events = run.events or []
    endpoint = _endpoint_call(run)
    return CallRequest(
        url=function.url,
        run_id=run.id,
        fn_id=str(function.id),
        step_target=call.step_target,
        attempt=call.attempt,
        max_attempts=function.max_attempts,
        event=events[0] if events else {},
        events=events,
        steps=memo.steps,
        stack=memo.stack,
        request_version=run.request_version,
        disable_immediate_execution=run.is_immediate_execution_disabled,
        queue_item_id=str(call.id) if checkpoints.is_offered(call.step_target, run.is_immediate_execution_disabled) and not endpoint else "",
        generation=call.generation,
        endpoint=endpoint,
        request_id=str(ULID()),
        job_id=_job_id(call, memo),
        defers=memo.defers,
        parts=memo.parts,
    )


def _endpoint_call(run: Run) -> EndpointCall | None:
    """A Durable Endpoint's run is called at its own request's route (functions/endpoints.py)."""
    if not is_endpoint(run.function):
        return None
    data = ((run.events or [{}])[0] or {}).get("data") or {}
    query, body = str(data.get("query_params") or ""), data.get("body")
    return EndpointCall(
        method=str(data.get("method") or "POST"),
        url=f"{data.get('domain', '')}{data.get('path', '')}" + (f"?{query}" if query else ""),
        body=body.encode() if isinstance(body, str) else b"",
        content_type=str(data.get("content_type") or "application/json"),
    )


def _job_id(call: PendingCall, memo: RunMemo) -> str:
    """Inngest's job id names the queue item a call is made for and stays the same on its
    retries: here a targeted step's calls, or the discovery that follows the run's n-th step
    (n as when the job began: steps checkpointed under it do not make its retries another job)."""
    if call.step_target == DISCOVERY:
        return f"{call.run_id}-{DISCOVERY}-{len(memo.stack) if call.job_stack is None else call.job_stack}"
    return f"{call.run_id}-{call.step_target}"


def _transport_error(response: SdkResponse) -> dict | None:
    if response.transport_error:
        return {"name": "Error", "message": response.transport_error}
    return None


def _log_call(run: Run, call: PendingCall, opcode: str, step_name: str, status: int | None) -> None:
    # run_id and function_id come from the log context; the step is named once known.
    set_step(step_name or call.step_target)
    log.debug("call done attempt=%s status=%s opcode=%s", call.attempt, status, opcode)
