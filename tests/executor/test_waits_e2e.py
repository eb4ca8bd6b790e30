"""Sleeps and waits for events end to end, in both modes, with the official SDK."""
from __future__ import annotations

import time
import uuid

import pytest

from tests.stacks import wait_for

pytestmark = pytest.mark.e2e


def open_waits(server, run_id: str) -> int:
    return server.query("SELECT count(*) FROM runs_wait WHERE run_id = %s AND kind = 'event'", [run_id])[0][0]


def test_sleep_resumes_the_run_after_its_duration(stack) -> None:
    server, app = stack
    run = server.run_once({"name": "test/sleeps", "data": {"seconds": 1}})
    assert run["status"] == "Completed"
    assert 1.0 <= run["output"]["slept"] < 5
    assert [s["name"] for s in server.steps(run["run_id"])] == ["started", "nap", "woke"]
    assert server.steps(run["run_id"])[1]["output"] is None  # a sleep's memo is null


def test_wait_for_event_is_satisfied_by_a_matching_event(stack) -> None:
    server, app = stack
    order = uuid.uuid4().hex
    (internal_id,) = server.send({"name": "test/waits", "data": {"order": order}})
    (run,) = server.wait_for_runs(internal_id)
    wait_for(lambda: open_waits(server, run["run_id"]) == 1, what="the wait to open")
    server.send({"name": "test/approve", "data": {"order": "some other order"}})  # its `if` does not hold
    server.send({"name": "test/approve", "data": {"order": order, "by": "alice"}})
    ended = server.wait_for_end(run["run_id"])
    assert ended["status"] == "Completed"
    assert ended["output"] == {"before": "before", "approval": {"order": order, "by": "alice"}}
    assert open_waits(server, run["run_id"]) == 0


def test_wait_for_event_times_out_with_null(stack) -> None:
    server, app = stack
    run = server.run_once({"name": "test/waits", "data": {"order": uuid.uuid4().hex, "timeout": 1}})
    assert run["status"] == "Completed"
    assert run["output"] == {"before": "before", "approval": None}
    (memo,) = [s for s in server.steps(run["run_id"]) if s["name"] == "approval"]
    assert memo["output"] is None


def test_cancel_event_matching_the_condition_cancels_a_sleeping_run(stack) -> None:
    server, app = stack
    order = uuid.uuid4().hex
    (internal_id,) = server.send({"name": "test/cancellable", "data": {"order": order}})
    (run,) = server.wait_for_runs(internal_id)
    wait_for(lambda: server.query("SELECT count(*) FROM runs_wait WHERE run_id = %s AND kind = 'sleep'", [run["run_id"]])[0][0],
             what="the run to go to sleep")
    server.send({"name": "test/cancel-order", "data": {"order": "another order"}})
    server.send({"name": "test/cancel-order", "data": {"order": order}})
    ended = server.wait_for_end(run["run_id"], timeout=10)
    assert ended["status"] == "Cancelled"
    assert server.query("SELECT count(*) FROM runs_pendingcall WHERE run_id = %s", [run["run_id"]])[0][0] == 0


def test_cancel_event_that_does_not_match_leaves_the_run_alone(stack) -> None:
    server, app = stack
    order = uuid.uuid4().hex
    (internal_id,) = server.send({"name": "test/cancellable", "data": {"order": order, "seconds": 1}})
    (run,) = server.wait_for_runs(internal_id)
    server.send({"name": "test/cancel-order", "data": {"order": "not this one"}})
    assert server.wait_for_end(run["run_id"])["status"] == "Completed"


def test_finish_timeout_cancels_a_run_that_takes_too_long(stack) -> None:
    server, app = stack
    run = server.run_once({"name": "test/times-out", "data": {}}, timeout=20)
    assert run["status"] == "Cancelled"
    assert server.query("SELECT count(*) FROM runs_wait WHERE run_id = %s", [run["run_id"]])[0][0] == 0


def test_cancel_event_while_a_call_is_in_flight_discards_its_answer(stack) -> None:
    server, app = stack
    tag = uuid.uuid4().hex
    app.slow_step_started.clear()
    (internal_id,) = server.send({"name": "test/slow-step", "data": {"seconds": 1.5, "tag": tag}})
    (run,) = server.wait_for_runs(internal_id)
    wait_for(app.slow_step_started.is_set, timeout=20, what="the slow step to start")
    server.send({"name": "test/stop-slow", "data": {"tag": tag}})
    assert server.wait_for_end(run["run_id"], timeout=10)["status"] == "Cancelled"
    time.sleep(2.5)  # the in-flight call answers meanwhile; its step must not be recorded
    assert [s["name"] for s in server.steps(run["run_id"])] == ["before"]
