"""The core path end to end, in dev mode and in production mode, with the official SDK as client."""
from __future__ import annotations

import time
import uuid

import pytest
import requests

from tests.stacks import wait_for

pytestmark = pytest.mark.e2e


def unique(prefix: str = "id") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def test_three_step_function_completes_with_its_output_and_memoized_steps(stack) -> None:
    server, app = stack
    run = server.run_once({"name": "test/three-steps", "data": {"start": 1}, "id": unique()})
    assert run["status"] == "Completed"
    assert run["output"]["result"] == {"one": 2, "two": 20}
    steps = server.steps(run["run_id"])
    assert [s["name"] for s in steps] == ["one", "two", "three"]
    assert [s["output"] for s in steps] == [{"data": 2}, {"data": 20}, {"data": {"one": 2, "two": 20}}]
    # One call per step plus the final one, each recorded with its answer.
    attempts = server.attempts(run["run_id"])
    assert [a["status_code"] for a in attempts] == [206, 206, 206, 200]


def test_step_that_fails_twice_then_succeeds_is_retried(stack) -> None:
    server, app = stack
    run = server.run_once({"name": "test/flaky", "data": {}})
    assert run["status"] == "Completed"
    assert run["output"] == "third time lucky"
    assert app.counters[f"flaky:{run['run_id']}"] == 3
    steps = server.steps(run["run_id"])
    assert [(s["name"], s["output"]) for s in steps] == [("flaky-step", {"data": "third time lucky"})]
    errors = [a for a in server.attempts(run["run_id"]) if a["opcode"] == "StepError"]
    assert [a["attempt"] for a in errors] == [0, 1]


def test_non_retriable_error_fails_the_run_at_once(stack) -> None:
    server, app = stack
    run = server.run_once({"name": "test/non-retriable", "data": {}})
    assert run["status"] == "Failed"
    assert run["output"]["code"] == "non_retriable_error"
    assert run["output"]["message"] == "give up now"
    assert app.counters[f"non-retriable:{run['run_id']}"] == 1


def test_retry_after_error_delays_the_retry(stack) -> None:
    server, app = stack
    run = server.run_once({"name": "test/retry-after", "data": {}})
    assert run["status"] == "Completed"
    first, second = app.seen[f"retry-after:{run['run_id']}"]
    # The app asked for 2 s; the retry interval configured for tests is 0.2 s.
    assert 1.9 <= second - first < 5


def test_wildcard_trigger_matches_names_under_the_prefix(stack) -> None:
    server, app = stack
    run = server.run_once({"name": "test/wild.card", "data": {}})
    assert run["status"] == "Completed"
    assert run["output"] == "test/wild.card"
    (internal_id,) = server.send({"name": "test/wildcard", "data": {}})
    (other,) = server.send({"name": "test/three-steps", "data": {"start": 0}})
    server.wait_for_runs(other)  # a later event got its run, so the first one had its chance
    assert server.runs_of_event(internal_id) == []


def test_expression_trigger_only_fires_when_it_holds(stack) -> None:
    server, app = stack
    run = server.run_once({"name": "test/expression", "data": {"plan": "pro"}})
    assert run["output"] == "pro"
    (free,) = server.send({"name": "test/expression", "data": {"plan": "free"}})
    (later,) = server.send({"name": "test/three-steps", "data": {"start": 0}})
    server.wait_for_runs(later)
    assert server.runs_of_event(free) == []


def test_event_id_deduplicates_runs_per_function(stack) -> None:
    server, app = stack
    event_id = unique("dedupe")
    first, second = server.send([
        {"name": "test/three-steps", "data": {"start": 1}, "id": event_id},
        {"name": "test/three-steps", "data": {"start": 2}, "id": event_id},
    ])
    assert first != second  # both events are stored with their own internal ids
    (run,) = server.wait_for_runs(first)
    server.wait_for_end(run["run_id"])
    assert server.runs_of_event(second) == []
    listed = requests.get(f"{server.base_url}/v1/events/{second}", timeout=5).json()["data"]
    assert listed["id"] == event_id


def test_cancelled_run_makes_no_further_calls(stack) -> None:
    server, app = stack
    app.slow_step_started.clear()
    (internal_id,) = server.send({"name": "test/slow-step", "data": {"seconds": 1.5}})
    (run,) = server.wait_for_runs(internal_id)
    wait_for(app.slow_step_started.is_set, timeout=20, what="the slow step to start")
    answer = requests.delete(f"{server.base_url}/v1/runs/{run['run_id']}", timeout=5)
    assert answer.status_code == 200
    ended = server.wait_for_end(run["run_id"])
    assert ended["status"] == "Cancelled"
    time.sleep(2.5)  # long enough for the in-flight call to answer and, if it were not discarded, go on
    assert [s["name"] for s in server.steps(run["run_id"])] == ["before"]
    assert server.wait_for_end(run["run_id"])["status"] == "Cancelled"
    events = requests.get(f"{server.base_url}/v1/events", params={"name": "inngest/function.cancelled"}, timeout=5).json()["data"]
    assert run["run_id"] in [e["id"] for e in events]  # function.cancelled carries the run id as its id


def test_failed_run_emits_function_failed_and_its_on_failure_handler_runs(stack) -> None:
    server, app = stack
    tag = unique("tag")
    run = server.run_once({"name": "test/always-fails", "data": {"tag": tag}})
    assert run["status"] == "Failed"
    assert run["output"]["message"] == f"boom {tag}"
    (handled,) = wait_for(lambda: app.seen.get(f"on-failure:{run['run_id']}"), timeout=20, what="the on_failure handler")
    assert handled["function_id"] == f"{app.app_id}-always-fails"
    assert handled["event"]["data"] == {"tag": tag}
    assert handled["error"]["name"] == "ValueError" and handled["error"]["message"] == f"boom {tag}"
    # As Inngest shapes it: the call's failure as its driver words it, beside the SDK's error.
    assert handled["error"]["error"] == "invalid status code: 500"
    assert handled["error"]["stack"].startswith("Traceback (most recent call last):")
    events = requests.get(f"{server.base_url}/v1/events", params={"name": "inngest/function.finished"}, timeout=5).json()["data"]
    finished = [e for e in events if e["data"]["run_id"] == run["run_id"]]
    assert finished and finished[0]["data"]["_inngest"] == {"status": "Failed"}


def test_completed_run_emits_function_finished_with_its_result(stack) -> None:
    server, app = stack
    run = server.run_once({"name": "test/wild.finished", "data": {}})
    events = requests.get(f"{server.base_url}/v1/events", params={"name": "inngest/function.finished"}, timeout=5).json()["data"]
    (finished,) = [e for e in events if e["data"]["run_id"] == run["run_id"]]
    assert finished["data"]["result"] == "test/wild.finished"
    assert finished["data"]["_inngest"] == {"status": "Completed"}
    assert finished["data"]["function_id"] == f"{app.app_id}-wildcard"


def test_every_call_carries_a_request_id_and_a_job_id_kept_across_retries(stack) -> None:
    server, app = stack
    run = server.run_once({"name": "test/call-ids", "data": {}})
    assert run["status"] == "Completed" and run["output"] == "done"
    # The step's call, the discovery after it (fails: 500), that discovery's retry.
    (first, failed, retried) = app.seen[f"call-ids:{run['run_id']}"]
    assert [attempt for attempt, _, _ in (first, failed, retried)] == [0, 0, 1]
    request_ids = {request_id for _, request_id, _ in (first, failed, retried)}
    assert len(request_ids) == 3 and all(request_ids)  # one per call
    assert failed[2] == retried[2] != first[2]  # a retry is the same job; the next discovery another
    assert all(job_id and run["run_id"] in job_id for _, _, job_id in (first, failed, retried))
