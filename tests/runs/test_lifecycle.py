"""Guarded state changes: claims, leases, cancellation races, idempotent step recording."""
from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import TextField
from django.db.models.functions import Cast
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.json_text import dump_json
from events.models import Event
from runs import creation, lifecycle, pending_calls
from runs.decision_commands import AddDefer, Decision, FinishRun, RecordStep, ScheduleCall
from runs.defers import record_defers
from runs.recording import AttemptRow
from runs.models import PendingCall, Run, RunIdempotencyKey, RunStatus, Step, StepAttempt
from tests.factories import make_function

pytestmark = pytest.mark.django_db


def start_one(idempotency_key: str = "key-1") -> Run:
    function = make_function()
    event = Event.objects.create(internal_id="01HZZZZZZZZZZZZZZZZZZZZZZZ", name="test/event", event_id=idempotency_key, ts=1)
    (run,) = creation.create_runs([creation.RunRequest(function, event, [event.as_payload()], idempotency_key)])
    return run


def attempt_for(call: PendingCall) -> AttemptRow:
    now = timezone.now()
    return AttemptRow(run_id=call.run_id, step_target=call.step_target, attempt=call.attempt, started_at=now, ended_at=now)


def test_same_idempotency_key_starts_one_run_per_function() -> None:
    run = start_one("order-7")
    again = creation.create_runs([creation.RunRequest(run.function, None, [], "order-7")])
    assert again == [] and Run.objects.count() == 1


def test_idempotency_key_is_free_again_after_24_hours() -> None:
    run = start_one("order-8")
    RunIdempotencyKey.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    (second,) = creation.create_runs([creation.RunRequest(run.function, None, [], "order-8")])
    assert second.id != run.id


def test_a_call_is_claimed_by_one_worker_only() -> None:
    run = start_one()
    call = run.pending_calls.get()
    assert pending_calls.claim_call(call.id, "worker-a", 30) is not None
    assert pending_calls.claim_call(call.id, "worker-b", 30) is None


def test_a_claim_reads_its_call_run_and_function_in_the_same_round_trip_as_the_orm_would() -> None:
    run = start_one()
    Run.objects.filter(id=run.id).update(run_slots=[{"key": "k", "limit": 1, "label": "l"}], parallel_pending=["a"])
    run.function.config = {"retries": 2, "nested": {"ä": [1, None]}}
    run.function.save()
    call_id = run.pending_calls.get().id
    with CaptureQueriesContext(connection) as queries:
        call = pending_calls.claim_call(call_id, "worker-a", 30)
        assert (call.lease_owner, call.generation, call.run.id, call.run.function.slug) == ("worker-a", 1, run.id, run.function.slug)
        assert pending_calls.claim_call(call_id, "worker-a", 30) is None  # held, even by the same owner
    assert len(queries) == (2 if connection.vendor == "postgresql" else 3)
    orm = PendingCall.objects.select_related("run", "run__function").get(id=call_id)
    for claimed, loaded in ((call, orm), (call.run, orm.run), (call.run.function, orm.run.function)):
        fields = [field.attname for field in type(loaded)._meta.concrete_fields]
        assert [getattr(claimed, name) for name in fields] == [getattr(loaded, name) for name in fields]
        assert not claimed._state.adding and claimed._state.db == loaded._state.db


def test_a_run_that_needs_nothing_before_it_starts_starts_in_its_claims_round_trip() -> None:
    run = start_one()
    run.function.starts_when_claimed = True
    run.function.save()
    call_id = run.pending_calls.get().id
    with CaptureQueriesContext(connection) as queries:
        claimed = lifecycle.claim_and_start(call_id, "worker-a", 30)
    assert len(queries) == (1 if connection.vendor == "postgresql" else 3)
    assert claimed.is_started and claimed.call.lease_owner == "worker-a"
    stored = Run.objects.get(id=run.id)
    assert stored.status == RunStatus.RUNNING and stored.started_at == claimed.call.run.started_at is not None
    assert claimed.call.run.status == RunStatus.RUNNING


@pytest.mark.parametrize("case", ["function with limits", "run holds a slot", "cancelled", "held by another worker"])
def test_a_claim_starts_no_run_that_needs_something_first_or_is_not_its_to_start(case: str) -> None:
    run = start_one()
    run.function.starts_when_claimed = case != "function with limits"
    run.function.save()
    call_id = run.pending_calls.get().id
    if case == "run holds a slot":
        Run.objects.filter(id=run.id).update(run_slots=[{"key": "k", "limit": 1, "label": "l"}])
    if case == "cancelled":
        Run.objects.filter(id=run.id).update(status=RunStatus.CANCELLED)
    if case == "held by another worker":
        PendingCall.objects.filter(id=call_id).update(lease_owner="worker-b", lease_expires_at=timezone.now() + timedelta(seconds=30))
    claimed = lifecycle.claim_and_start(call_id, "worker-a", 30)
    if case == "held by another worker":
        assert claimed is None
    else:
        assert claimed is not None and not claimed.is_started
    status = Run.objects.get(id=run.id).status
    assert status == (RunStatus.CANCELLED if case == "cancelled" else RunStatus.QUEUED)
    assert Run.objects.get(id=run.id).started_at is None


def test_an_expired_lease_can_be_claimed_by_another_worker() -> None:
    run = start_one()
    call = run.pending_calls.get()
    pending_calls.claim_call(call.id, "worker-a", 30)
    PendingCall.objects.update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert pending_calls.claim_call(call.id, "worker-b", 30).lease_owner == "worker-b"


def test_a_call_not_yet_due_is_not_claimed() -> None:
    run = start_one()
    PendingCall.objects.update(due_at=timezone.now() + timedelta(minutes=1))
    assert pending_calls.claim_call(run.pending_calls.get().id, "worker-a", 30) is None


def test_decision_is_discarded_when_the_run_was_cancelled_in_flight() -> None:
    run = start_one()
    call = pending_calls.claim_call(run.pending_calls.get().id, "worker-a", 30)
    assert lifecycle.cancel_run(run) is True
    record = RecordStep("s1", "step one", "StepRun", {"data": 1})
    applied = lifecycle.apply_decision(call, "worker-a", Decision(commands=(record, ScheduleCall("step", 0, timezone.now()))),
                                       attempt_for(call), 30, 0)
    assert applied.is_lost
    assert not Step.objects.exists() and not StepAttempt.objects.exists()
    assert Run.objects.get(id=run.id).status == RunStatus.CANCELLED


def test_recording_the_same_step_twice_keeps_one_row() -> None:
    run = start_one()
    call = pending_calls.claim_call(run.pending_calls.get().id, "worker-a", 30)
    decision = Decision(commands=(RecordStep("s1", "one", "StepRun", {"data": 1}), ScheduleCall("step", 0, timezone.now())))
    lifecycle.apply_decision(call, "worker-a", decision, attempt_for(call), 30, 0)
    lifecycle.apply_decision(call, "worker-a", decision, attempt_for(call), 30, 0)
    assert list(Step.objects.values_list("step_id", "output")) == [("s1", {"data": 1})]


@pytest.mark.parametrize("data", [{"items": [{"é": "x\u0000", "n": 1.5}] * 3}, "a\ud800b", None, 0])
def test_a_steps_data_shared_by_its_attempt_and_its_record_is_stored_as_each_would_store_it(data: object) -> None:
    """The attempt's text is taken from the record's (runs/recording.py): the rows read back as
    the values written, a lone surrogate and a missing output (SQL NULL, not `null`) included."""
    run = start_one()
    call = pending_calls.claim_call(run.pending_calls.get().id, "worker-a", 30)
    attempt = dataclasses.replace(attempt_for(call), output=data, opcode="StepRun")
    record = RecordStep("s1", "one", "StepRun", {"data": data})
    lifecycle.apply_decision(call, "worker-a", Decision(commands=(record, ScheduleCall("step", 0, timezone.now()))), attempt, 30, 0)
    assert StepAttempt.objects.get().output == data
    assert Step.objects.get().output == {"data": data}
    stored_text = StepAttempt.objects.values_list(Cast("output", TextField()), flat=True).get()
    assert stored_text == (None if data is None else dump_json(data))


def test_a_plain_step_writes_its_attempt_step_and_flags_and_a_call_taken_over_writes_nothing() -> None:
    """The one applier on both engines (SQLite here without DATABASE_URL): the values come back
    as written, datetimes included, and the guard stops a worker that lost its lease."""
    run = start_one()
    call = pending_calls.claim_call(run.pending_calls.get().id, "worker-a", 30)
    attempt = dataclasses.replace(attempt_for(call), output={"data": "é\u0000"}, opcode="StepRun", status_code=206)
    decision = Decision(commands=(RecordStep("s1", "one", "StepRun", {"data": [1, None]}), ScheduleCall("step", 2, timezone.now())),
                        request_version=2, calls_without_progress=1)
    applied = lifecycle.apply_decision(call, "worker-a", decision, attempt, 30, 3)
    assert applied.next_call is call and (call.attempt, call.calls_without_progress, call.run.request_version) == (2, 1, 2)
    stored = StepAttempt.objects.get()
    assert (stored.output, stored.status_code, stored.started_at, stored.ended_at) == (
        {"data": "é\u0000"}, 206, attempt.started_at, attempt.ended_at)
    assert list(Step.objects.values_list("step_id", "output", "position")) == [("s1", {"data": [1, None]}, 3)]
    assert Run.objects.get(id=run.id).request_version == 2
    pending = PendingCall.objects.get()
    assert (pending.attempt, pending.calls_without_progress) == (2, 1) and pending.lease_expires_at > timezone.now()
    PendingCall.objects.update(lease_owner="worker-b")
    again = Decision(commands=(RecordStep("s2", "two", "StepRun", 2), ScheduleCall("step", 0, timezone.now())))
    assert lifecycle.apply_decision(call, "worker-a", again, attempt_for(call), 30, 4).is_lost
    assert (Step.objects.count(), StepAttempt.objects.count()) == (1, 1)


def test_a_runs_last_answer_is_recorded_with_the_runs_end_and_not_at_all_when_the_call_was_lost() -> None:
    run, other = start_one("last-1"), start_one("last-2")
    call, lost = (pending_calls.claim_call(r.pending_calls.get().id, "worker-a", 30) for r in (run, other))
    lifecycle.start_run(call.run), lifecycle.start_run(lost.run)
    last = Decision(commands=(RecordStep("s1", "one", "StepRun", {"data": 1}), FinishRun(RunStatus.COMPLETED, {"ok": True})))
    with CaptureQueriesContext(connection) as queries:
        applied = lifecycle.apply_decision(call, "worker-a", last, attempt_for(call), 30, 0)
    assert not applied.is_lost and applied.next_call is None
    # On PostgreSQL one message: the recording, the end and its function.finished event (nothing listens to it).
    assert len(queries) == 1 or connection.vendor != "postgresql"
    run.refresh_from_db()
    assert (run.status, run.output) == (RunStatus.COMPLETED, {"ok": True}) and not run.pending_calls.exists()
    assert list(Step.objects.filter(run=run).values_list("step_id", flat=True)) == ["s1"]
    assert StepAttempt.objects.filter(run=run).count() == 1 and Event.objects.filter(name="inngest/function.finished").count() == 1
    PendingCall.objects.filter(id=lost.id).update(lease_owner="worker-b")
    assert lifecycle.apply_decision(lost, "worker-a", last, attempt_for(lost), 30, 0).is_lost
    assert Run.objects.get(id=other.id).status == RunStatus.RUNNING and not StepAttempt.objects.filter(run=other).exists()
    assert not Step.objects.filter(run=other).exists() and Event.objects.filter(name="inngest/function.finished").count() == 1


@pytest.mark.parametrize("listens", ["a trigger", "a deferred run"])
def test_a_runs_last_answer_that_something_listens_to_is_recorded_once_and_starts_it(listens: str) -> None:
    if listens == "a trigger":
        listener = make_function(event="inngest/function.finished")
    else:
        listener = make_function(event="inngest/deferred.schedule", expression="event.data._inngest.fn_slug == 'app-later'")
    run = start_one()
    call = pending_calls.claim_call(run.pending_calls.get().id, "worker-a", 30)
    lifecycle.start_run(call.run)
    if listens == "a deferred run":
        record_defers(Run.objects.get(id=run.id), [AddDefer("d1", "app-later", {"n": 1})])  # on another worker
    last = Decision(commands=(RecordStep("s1", "one", "StepRun", {"data": 1}), FinishRun(RunStatus.COMPLETED, {"ok": True})))
    applied = lifecycle.apply_decision(call, "worker-a", last, attempt_for(call), 30, 0)
    assert not applied.is_lost and applied.next_call is None and call.run.status == RunStatus.COMPLETED
    assert Run.objects.get(id=run.id).status == RunStatus.COMPLETED and not run.pending_calls.exists()
    assert StepAttempt.objects.filter(run=run).count() == 1 and Step.objects.filter(run=run).count() == 1
    assert Event.objects.filter(name="inngest/function.finished").count() == 1
    assert Run.objects.filter(function=listener).count() == 1


def test_a_decision_that_did_not_see_checkpointed_steps_writes_nothing_and_is_made_again() -> None:
    """Steps an SDK reported to /v1/checkpoint during the call: the write checks the count the
    decision saw, in the same message, on the plain path and in a transaction alike."""
    run = start_one()
    call = pending_calls.claim_call(run.pending_calls.get().id, "worker-a", 30)
    Step.objects.create(run=run, step_id="c1", op="StepRun", output={"data": 0}, position=0)
    plain = Decision(commands=(RecordStep("s1", "one", "StepRun", {"data": 1}), ScheduleCall("step", 1, timezone.now())))
    finish = Decision(commands=(FinishRun(RunStatus.COMPLETED, "done"),))
    for decision in (plain, finish):
        applied = lifecycle.apply_decision(call, "worker-a", decision, attempt_for(call), 30, 0, steps_seen=0)
        assert applied.is_stale and not applied.is_lost
    assert list(Step.objects.values_list("step_id", flat=True)) == ["c1"] and not StepAttempt.objects.exists()
    assert PendingCall.objects.get().attempt == 0 and Run.objects.get(id=run.id).status == RunStatus.QUEUED
    applied = lifecycle.apply_decision(call, "worker-a", plain, attempt_for(call), 30, 1, steps_seen=1)
    assert applied.next_call is call and list(Step.objects.order_by("position").values_list("step_id", flat=True)) == ["c1", "s1"]
    PendingCall.objects.update(lease_owner="worker-b")
    assert lifecycle.apply_decision(call, "worker-a", finish, attempt_for(call), 30, 2, steps_seen=0).is_lost


def test_finishing_removes_pending_calls_and_only_happens_once() -> None:
    run = start_one()
    call = pending_calls.claim_call(run.pending_calls.get().id, "worker-a", 30)
    lifecycle.start_run(call.run)
    lifecycle.apply_decision(call, "worker-a", Decision(commands=(FinishRun("completed", {"ok": True}),)), attempt_for(call), 30, 0)
    stored = Run.objects.get(id=run.id)
    assert (stored.status, stored.output) == (RunStatus.COMPLETED, {"ok": True})
    assert not PendingCall.objects.exists()
    assert lifecycle.cancel_run(stored) is False  # a finished run cannot be cancelled
    assert Run.objects.get(id=run.id).status == RunStatus.COMPLETED


def test_a_later_call_becomes_a_new_due_row_and_leaves_the_worker() -> None:
    run = start_one()
    call = pending_calls.claim_call(run.pending_calls.get().id, "worker-a", 30)
    retry_at = timezone.now() + timedelta(seconds=30)
    applied = lifecycle.apply_decision(call, "worker-a", Decision(commands=(ScheduleCall("step", 1, retry_at),)), attempt_for(call), 30, 0)
    assert applied.next_call is None and not applied.is_lost
    pending = PendingCall.objects.get()
    assert (pending.attempt, pending.due_at, pending.lease_owner) == (1, retry_at, "")


def test_a_call_due_now_stays_with_the_worker() -> None:
    run = start_one()
    call = pending_calls.claim_call(run.pending_calls.get().id, "worker-a", 30)
    applied = lifecycle.apply_decision(call, "worker-a", Decision(commands=(ScheduleCall("abc", 0, timezone.now()),)), attempt_for(call), 30, 0)
    assert applied.next_call is not None and applied.next_call.step_target == "abc"
    assert PendingCall.objects.get().lease_owner == "worker-a"


def test_a_queued_run_cannot_complete_without_starting() -> None:
    run = start_one()
    assert lifecycle.finish_run(run, RunStatus.COMPLETED, None) is False
    assert Run.objects.get(id=run.id).status == RunStatus.QUEUED
    assert PendingCall.objects.filter(run=run).exists()  # still on its way to a worker


def test_first_of_two_requests_with_the_same_key_in_one_batch_wins() -> None:
    function = make_function()
    first = Event.objects.create(internal_id="01HAAAAAAAAAAAAAAAAAAAAAAA", name="e", event_id="dup", ts=1)
    second = Event.objects.create(internal_id="01HBBBBBBBBBBBBBBBBBBBBBBB", name="e", event_id="dup", ts=1)
    runs = creation.create_runs([
        creation.RunRequest(function, first, [first.as_payload()], "dup"),
        creation.RunRequest(function, second, [second.as_payload()], "dup"),
    ])
    assert [run.event_id for run in runs] == [first.id]


def race_mode_run() -> tuple[PendingCall, Run]:
    """A run in a race-mode group: step b1 is still pending; this worker holds a discovery call."""
    run = start_one()
    Run.objects.filter(id=run.id).update(status=RunStatus.RUNNING, parallel_pending=["b1"], parallel_mode="race")
    call = pending_calls.claim_call(run.pending_calls.get().id, "worker-a", 30)
    return call, run


def test_a_discovery_planning_a_step_whose_call_is_in_flight_ends_and_leaves_that_call() -> None:
    call, run = race_mode_run()
    in_flight = PendingCall.objects.create(run=run, step_target="b1", lease_owner="worker-b")
    decision = Decision(commands=(ScheduleCall("b1", 0, timezone.now()),))
    applied = lifecycle.apply_decision(call, "worker-a", decision, attempt_for(call), 30, 0)
    assert applied.next_call is None and not applied.is_lost
    assert list(PendingCall.objects.values_list("id", "step_target")) == [(in_flight.id, "b1")]


def test_a_discovery_that_missed_a_step_finished_elsewhere_is_made_again() -> None:
    call, run = race_mode_run()
    Step.objects.create(run=run, step_id="b1", name="b1", op="StepRun", output={"data": 1}, position=0)
    Run.objects.filter(id=run.id).update(parallel_pending=[])  # b1's worker recorded it meanwhile
    decision = Decision(commands=(ScheduleCall("b1", 0, timezone.now()),))  # what a discovery without b1 answers
    applied = lifecycle.apply_decision(call, "worker-a", decision, attempt_for(call), 30, 1)
    assert applied.next_call is not None and applied.next_call.step_target == "step"
    assert list(PendingCall.objects.values_list("step_target", flat=True)) == ["step"]


def finish_started(run: Run) -> list[str]:
    """Complete the run through apply_decision; the SQL it sent."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    call = pending_calls.claim_call(run.pending_calls.get().id, "worker-a", 30)
    lifecycle.start_run(call.run)
    with CaptureQueriesContext(connection) as captured:
        lifecycle.apply_decision(call, "worker-a", Decision(commands=(FinishRun("completed", 7),)), attempt_for(call), 30, 0)
    return [query["sql"] for query in captured.captured_queries]


def test_a_run_end_nobody_listens_to_stores_its_event_without_trigger_or_wait_look_ups() -> None:
    run = start_one()
    sent = finish_started(run)
    assert list(Event.objects.filter(name="inngest/function.finished").values_list("data", flat=True))[0]["result"] == 7
    assert not any('"functions_trigger"."event_name" IN' in sql or '"runs_wait"."event_name" IN' in sql for sql in sent)
    assert Run.objects.get(id=run.id).status == RunStatus.COMPLETED and not PendingCall.objects.exists()


def test_a_run_end_with_a_listening_trigger_starts_its_run() -> None:
    run = start_one()
    handler = make_function(event="inngest/function.*")
    finish_started(run)
    started = Run.objects.get(function=handler)
    assert started.events[0]["name"] == "inngest/function.finished" and started.events[0]["data"]["run_id"] == run.id


@pytest.mark.parametrize("later", [False, True], ids=["retried at once", "retried later"])
def test_a_calls_retries_keep_the_job_a_checkpoint_noted_and_its_next_job_forgets_it(later: bool) -> None:
    run = start_one()
    call = pending_calls.claim_call(run.pending_calls.get().id, "worker-a", 30)
    PendingCall.objects.filter(id=call.id).update(job_stack=0)  # a checkpoint stored steps under it
    call.job_stack = 0
    due = timezone.now() + timedelta(seconds=30 if later else 0)
    applied = lifecycle.apply_decision(call, "worker-a", Decision(commands=(ScheduleCall("step", 1, due),)), attempt_for(call), 30, 2)
    retry = applied.next_call or PendingCall.objects.get(run=run)
    assert (retry.attempt, retry.job_stack) == (1, 0) and PendingCall.objects.get(run=run).job_stack == 0
    if later:
        return  # the row was made again for the retry, with the job's start
    record = RecordStep("s3", "three", "StepRun", {"data": 3})
    applied = lifecycle.apply_decision(retry, "worker-a", Decision(commands=(record, ScheduleCall("step", 0, timezone.now()))),
                                       attempt_for(retry), 30, 2)
    assert applied.next_call.job_stack is None and PendingCall.objects.get(run=run).job_stack is None
