"""`POST /v1/checkpoint/{runId}/async` (executor/checkpoints.py): steps an SDK ran inside a call,
stored once each with the metadata they carry, the defers made in them, accepted only from the
claim that holds the call, held to the run limits."""
from __future__ import annotations

import json

import psycopg2.extensions
import pytest
from django.db import connection
from django.db.models import TextField
from django.db.models.functions import Cast
from django.test import Client, override_settings
from ulid import ULID

from core.json_text import dump_json
from executor.checkpoints import is_offered
from runs import lifecycle, pending_calls
from runs.defers import defers_for_call
from runs.models import DeferStatus, PendingCall, Run, RunDefer, RunMetadata, RunStatus, Step, StepAttempt
from tests.factories import make_function

pytestmark = pytest.mark.django_db


@pytest.fixture
def held_call() -> PendingCall:
    """A run whose discovery call a worker has claimed (and is making)."""
    run = Run.objects.create(id=str(ULID()), function=make_function(), events=[{"name": "test/event", "data": {}}],
                             status=RunStatus.RUNNING)
    row = PendingCall.objects.create(run=run, step_target="step", attempt=2)
    call = pending_calls.claim_call(row.id, "worker-1", 30)
    assert call is not None and call.generation == 1
    return call


def post(run_id: str, body: object) -> tuple[int, dict]:
    answer = Client().post(f"/v1/checkpoint/{run_id}/async", data=json.dumps(body), content_type="application/json")
    return answer.status_code, answer.json()


def checkpoint(call: PendingCall, *steps: dict, generation: int | None = None) -> dict:
    return {"run_id": call.run_id, "fn_id": str(call.run.function_id), "qi_id": str(call.id), "request_id": "r",
            "generation_id": call.generation if generation is None else generation, "request_started_at": 0,
            "steps": list(steps), "ts": 0}


def step_run(step_id: str, data: object) -> dict:
    return {"op": "StepRun", "id": step_id, "name": step_id, "displayName": step_id, "data": data,
            "timing": {"a": 1_700_000_000_000_000_000, "b": 5_000_000}}


def test_steps_are_stored_once_in_order_and_reset_the_calls_attempts(held_call: PendingCall) -> None:
    assert post(held_call.run_id, checkpoint(held_call, step_run("a", 1), step_run("b", {"x": 2})))[0] == 200
    assert post(held_call.run_id, checkpoint(held_call, step_run("b", "again"), step_run("c", None)))[0] == 200
    steps = list(Step.objects.filter(run_id=held_call.run_id).order_by("position").values_list("step_id", "output", "position"))
    assert steps == [("a", {"data": 1}, 0), ("b", {"data": {"x": 2}}, 1), ("c", {"data": None}, 2)]
    history = StepAttempt.objects.filter(run_id=held_call.run_id, is_checkpointed=True).order_by("id")
    assert [(a.step_id, a.opcode, a.output) for a in history] == [("a", "StepRun", 1), ("b", "StepRun", {"x": 2}), ("c", "StepRun", None)]
    call = PendingCall.objects.get(id=held_call.id)
    assert (call.attempt, call.job_stack) == (0, 0)  # still the job that began with no step memoized


def test_checkpointed_outputs_are_stored_as_each_row_would_store_them(held_call: PendingCall) -> None:
    """Each output is serialized once for its step and attempt rows (runs/checkpoints.py): they
    read back as sent, non-ASCII text, an escaped tab, a null and a legacy `Step` op's whole output
    included. (The endpoint refuses NUL and lone surrogates; tests/runs/test_lifecycle.py has them
    on the calls' path.)"""
    values = [{"items": [{"é": "x\t"}] * 3}, "a😀b", None, 0]
    legacy_output = {"k": [1, "ü"]}
    steps = [step_run(f"s{i}", value) for i, value in enumerate(values)]
    legacy = {**step_run("legacy", None), "op": "Step", "data": legacy_output}
    answer = post(held_call.run_id, checkpoint(held_call, *steps, legacy))
    assert answer[0] == 200, answer
    rows = StepAttempt.objects.filter(run_id=held_call.run_id, is_checkpointed=True).order_by("id")
    assert [a.output for a in rows] == [*values, legacy_output]
    texts = list(rows.values_list(Cast("output", TextField()), flat=True))
    assert texts == [None if v is None else dump_json(v) for v in [*values, legacy_output]]
    stored = Step.objects.filter(run_id=held_call.run_id).order_by("position")
    assert [s.output for s in stored] == [*({"data": v} for v in values), legacy_output]


def test_a_checkpoint_from_an_earlier_claim_is_stale(held_call: PendingCall) -> None:
    status, body = post(held_call.run_id, checkpoint(held_call, step_run("a", 1), generation=held_call.generation - 1))
    assert status == 409 and "stale" in body["error"]
    PendingCall.objects.filter(id=held_call.id).update(lease_owner="", lease_expires_at=None)  # the sweeper took it back
    assert post(held_call.run_id, checkpoint(held_call, step_run("a", 1)))[0] == 409
    assert not Step.objects.filter(run_id=held_call.run_id).exists()


def test_a_checkpoint_for_a_call_that_has_ended_is_stale_and_an_unknown_run_is_404(held_call: PendingCall) -> None:
    body = checkpoint(held_call, step_run("a", 1))
    lifecycle.cancel_run(held_call.run)
    assert post(held_call.run_id, body)[0] == 409
    status, answer = post(str(ULID()), {**body, "run_id": None})
    assert status == 404 and answer == {"error": "run not found", "status": 404}


def test_a_steps_metadata_is_kept_once_with_the_step(held_call: PendingCall) -> None:
    usage = {"kind": "inngest.ai", "scope": "step", "op": "merge", "values": {"request_model": "gpt-4o", "input_tokens": 10, "output_tokens": 0}}
    score = {"kind": "inngest.score", "scope": "run", "op": "merge", "values": {"helpful": {"value": 1}}}
    asked = {**step_run("hashed-ask", "ok"), "userland": {"id": "ask"}, "metadata": [usage, score]}
    assert post(held_call.run_id, checkpoint(held_call, asked))[0] == 200
    assert post(held_call.run_id, checkpoint(held_call, asked))[0] == 200  # the SDK reports it again
    rows = RunMetadata.objects.filter(run_id=held_call.run_id).order_by("id")
    assert [(r.scope, r.step_id, r.kind, r.attempt) for r in rows] == [("step", "ask", "inngest.ai", 2), ("run", "ask", "inngest.score", 2)]
    assert rows[0].values["estimated_cost"] == 0.000025  # 10 tokens in at $2.50 a million


def test_defers_made_in_checkpointed_steps_are_kept_once(held_call: PendingCall) -> None:
    defer = {"op": "DeferAdd", "id": "d1", "name": "later", "opts": {"fn_slug": "app-scorer", "input": {"n": 1}}}
    assert post(held_call.run_id, checkpoint(held_call, step_run("a", 1), defer))[0] == 200
    assert post(held_call.run_id, checkpoint(held_call, defer, step_run("b", 2)))[0] == 200
    abort = {"op": "DeferAbort", "id": "x", "opts": {"target_hashed_id": "d1"}}
    assert post(held_call.run_id, checkpoint(held_call, abort))[0] == 200
    assert list(RunDefer.objects.filter(run_id=held_call.run_id).values_list("hashed_id", "fn_slug", "status")) == [
        ("d1", "app-scorer", DeferStatus.ABORTED)]
    assert Step.objects.filter(run_id=held_call.run_id).count() == 2
def defer_add(hashed_id: str, data: object) -> dict:
    return {"op": "DeferAdd", "id": hashed_id, "name": "later", "displayName": "later",
            "opts": {"fn_slug": "app-later", "input": data, "meta": {"propagated_sessions": {"org": "acme"}}}}


def test_defers_and_step_metadata_ride_along_checkpoints_once(held_call: PendingCall) -> None:
    tagged = {**step_run("a", 1), "metadata": [{"kind": "userland.default", "scope": "step", "op": "merge", "values": {"k": 1}}]}
    for _ in range(2):  # a checkpoint sent twice
        assert post(held_call.run_id, checkpoint(held_call, defer_add("d1", {"n": 1}), tagged))[0] == 200
    assert post(held_call.run_id, checkpoint(held_call, defer_add("d2", {}), {"op": "DeferAbort", "id": "d2:abort",
                                                                            "opts": {"target_hashed_id": "d2"}}))[0] == 200
    assert defers_for_call(Run.objects.get(id=held_call.run_id)) == {"d1": {"abortable": True}, "d2": {"abortable": False}}
    assert held_call.run.defers.get(hashed_id="d1").meta == {"propagated_sessions": {"org": "acme"}}
    assert list(RunMetadata.objects.filter(run_id=held_call.run_id).values_list("step_id", "values")) == [("a", {"k": 1})]
    assert Step.objects.filter(run_id=held_call.run_id).count() == 1


def test_a_stale_checkpoint_keeps_no_defer(held_call: PendingCall) -> None:
    status, _ = post(held_call.run_id, checkpoint(held_call, defer_add("d1", {}), generation=held_call.generation + 1))
    assert status == 409 and defers_for_call(Run.objects.get(id=held_call.run_id)) == {}


@pytest.mark.parametrize("body, problem", [
    ({"steps": []}, "qi_id"),
    ({"qi_id": "1", "steps": [{"op": "Sleep", "id": "s"}]}, "cannot checkpoint opcode Sleep"),
    ({"qi_id": "1", "steps": [{"op": "Teleport", "id": "s"}]}, "unknown opcode"),
    ({"qi_id": "1", "steps": [{"op": "StepRun", "id": "x" * 65}]}, "longer than 64"),
    ({"qi_id": "1", "generation_id": "one", "steps": []}, "generation_id"),
], ids=["no queue item", "an async op", "an unknown op", "an id no column takes", "a generation that is not a number"])
def test_a_malformed_checkpoint_is_a_bad_request(held_call: PendingCall, body: dict, problem: str) -> None:
    status, answer = post(held_call.run_id, body)
    assert status == 400 and problem in answer["error"]


@override_settings(INNGEST_MAX_STEPS_PER_RUN=2, INNGEST_MAX_STEP_OUTPUT_BYTES=50)
def test_steps_past_the_run_limits_are_refused_and_nothing_is_stored(held_call: PendingCall) -> None:
    status, answer = post(held_call.run_id, checkpoint(held_call, step_run("a", "x" * 100)))
    assert status == 413 and answer["error"].startswith("InngestErrStepOutputTooLarge")
    status, answer = post(held_call.run_id, checkpoint(held_call, step_run("a", 1), step_run("b", 2), step_run("c", 3)))
    assert status == 413 and answer["error"].startswith("InngestErrFunctionOverflowed")
    assert not Step.objects.filter(run_id=held_call.run_id).exists()
    assert PendingCall.objects.get(id=held_call.id).attempt == 2  # nothing changed


@override_settings(INNGEST_SIGNING_KEY="signkey-test-" + "ab" * 32)
def test_the_endpoint_needs_the_signing_key_when_one_is_set(held_call: PendingCall) -> None:
    assert Client().post(f"/v1/checkpoint/{held_call.run_id}/async", data="{}", content_type="application/json").status_code == 401


def test_checkpointing_is_offered_to_discovery_calls_with_time_for_the_sdks_whole_turn() -> None:
    assert is_offered("step", is_immediate_execution_disabled=False)
    assert not is_offered("hashed-step-id", is_immediate_execution_disabled=False)  # a targeted step runs alone
    assert not is_offered("step", is_immediate_execution_disabled=True)  # parallel groups: one step per call
    with override_settings(INNGEST_CALL_TIMEOUT_SECONDS=30):  # the SDK may run 10 s plus a step: not enough
        assert not is_offered("step", is_immediate_execution_disabled=False)
    with override_settings(INNGEST_ASYNC_CHECKPOINTING=False):
        assert not is_offered("step", is_immediate_execution_disabled=False)



class RoundTrips:
    """Messages the connection sends to PostgreSQL: each statement it executes and, for each
    transaction Django opens, the BEGIN psycopg2 sends before its first statement and the COMMIT
    (or ROLLBACK) that ends it."""

    def __init__(self) -> None:
        self.statements: list[str] = []
        self.django_transactions = 0
        self._was_in_one = False

    def __call__(self, execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        is_in_one = context["connection"].in_atomic_block
        if is_in_one and not self._was_in_one:
            self.django_transactions += 1
        self._was_in_one = is_in_one
        self.statements.append(sql)
        return execute(sql, params, many, context)

    @property
    def count(self) -> int:
        return len(self.statements) + 2 * self.django_transactions


def transaction_status() -> int:
    return connection.connection.info.transaction_status


@pytest.mark.skipif(connection.vendor != "postgresql", reason="round trips to PostgreSQL")
@pytest.mark.django_db(transaction=True)  # no test transaction around it: the checkpoint's own, as in production
def test_a_checkpoint_of_steps_is_two_round_trips(held_call: PendingCall) -> None:
    body = checkpoint(held_call, step_run("a", 1), step_run("b", 2), step_run("c", 3))
    counted = RoundTrips()
    with connection.execute_wrapper(counted):
        assert post(held_call.run_id, body) == (200, {"data": {"stored": 3}})
    assert counted.count <= 2, counted.statements
    assert counted.statements[0].startswith("BEGIN") and counted.statements[-1].endswith("COMMIT")
    assert transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_IDLE
    steps = Step.objects.filter(run_id=held_call.run_id).order_by("position").values_list("step_id", "output", "position")
    assert list(steps) == [("a", {"data": 1}, 0), ("b", {"data": 2}, 1), ("c", {"data": 3}, 2)]
    assert StepAttempt.objects.filter(run_id=held_call.run_id, is_checkpointed=True, attempt=2).count() == 3
    call = PendingCall.objects.get(id=held_call.id)
    assert (call.attempt, call.calls_without_progress, call.job_stack) == (0, 0, 0)
    counted = RoundTrips()
    with connection.execute_wrapper(counted):  # the same steps again: read, then only the COMMIT
        assert post(held_call.run_id, body) == (200, {"data": {"stored": 0}})
    assert counted.count == 2 and counted.statements[-1] == "COMMIT"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="a transaction opened by the checkpoint's own BEGIN")
@pytest.mark.django_db(transaction=True)
@override_settings(INNGEST_MAX_STEP_OUTPUT_BYTES=50)
def test_a_refused_checkpoint_rolls_its_transaction_back(held_call: PendingCall) -> None:
    """The read opened a transaction and locked the call: a refusal must end it, or the
    connection's later statements would run in it, holding the lock, and never commit."""
    assert post(held_call.run_id, checkpoint(held_call, step_run("a", 1), generation=held_call.generation + 1))[0] == 409
    assert transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_IDLE
    assert post(held_call.run_id, checkpoint(held_call, step_run("a", "x" * 100)))[0] == 413
    assert transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_IDLE
    assert post(held_call.run_id, checkpoint(held_call, step_run("b", 2)))[0] == 200
    assert list(Step.objects.filter(run_id=held_call.run_id).values_list("step_id", flat=True)) == ["b"]
