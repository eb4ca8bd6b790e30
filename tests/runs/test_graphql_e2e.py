"""`POST /v0/gql` answers the queries the SDKs' own test suites send, on runs made by the real SDK."""
from __future__ import annotations

import json
import uuid

import pytest
import requests

pytestmark = pytest.mark.e2e

RUN = "query GetRun($run_id: String!) { run(runID: $run_id) { output status } runTrigger(runID: $run_id) { payloads } }"
HISTORY = "query GetHistory($run_id: String!) { run(runID: $run_id) { trace { childrenSpans { name outputID } } } }"
OUTPUT = ("query GetHistory($output_id: String!) { runTraceSpanOutputByID(outputID: $output_id) "
          "{ data error { message name stack } } }")
EVENT = "query GetRunFromEventID($event_id: ID!) { event(query: {eventId: $event_id}) { functionRuns { id } } }"


def gql(server, query: str, **variables: str) -> dict:
    answer = requests.post(f"{server.base_url}/v0/gql", json={"query": query, "variables": variables}, timeout=10)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert "errors" not in body, body
    return body["data"]


def spans(server, run_id: str) -> list[tuple[str, dict]]:
    children = gql(server, HISTORY, run_id=run_id)["run"]["trace"]["childrenSpans"]
    return [(span["name"], gql(server, OUTPUT, output_id=span["outputID"])["runTraceSpanOutputByID"]) for span in children]


def test_a_completed_run_its_trigger_and_its_steps(stack) -> None:
    server, app = stack
    run = server.run_once({"name": "test/three-steps", "data": {"start": 4}})
    data = gql(server, RUN, run_id=run["run_id"])
    assert data["run"]["status"] == "COMPLETED"
    assert json.loads(data["run"]["output"])["result"] == {"one": 5, "two": 50}
    event = json.loads(data["runTrigger"]["payloads"][0])
    assert event["name"] == "test/three-steps" and event["data"] == {"start": 4}
    outputs = [(name, json.loads(output["data"]), output["error"]) for name, output in spans(server, run["run_id"])]
    assert outputs == [("one", 5, None), ("two", 50, None), ("three", {"one": 5, "two": 50}, None)]
    assert gql(server, EVENT, event_id=run["event_id"])["event"]["functionRuns"] == [{"id": run["run_id"]}]


def test_repeated_step_ids_are_separate_spans_in_order(stack) -> None:
    server, app = stack
    run = server.run_once({"name": "test/repeated-steps", "data": {}})
    assert run["output"] == [0, 1]
    assert spans(server, run["run_id"]) == [("foo", {"data": "0", "error": None}), ("foo", {"data": "1", "error": None})]


def test_a_failed_step_shows_its_error_and_the_run_fails(stack) -> None:
    server, app = stack
    run = server.run_once({"name": "test/failing-step", "data": {}})
    data = gql(server, RUN, run_id=run["run_id"])
    assert data["run"]["status"] == "FAILED"
    assert json.loads(data["run"]["output"])["message"] == "the step gave up"
    ((name, output),) = spans(server, run["run_id"])
    assert name == "explode" and output["data"] is None
    assert output["error"]["name"] == "ValueError" and output["error"]["message"] == "the step gave up"
    assert "Traceback" in output["error"]["stack"]


def test_a_cancelled_run_and_an_unknown_run(stack) -> None:
    server, app = stack
    order = uuid.uuid4().hex
    (internal_id,) = server.send({"name": "test/cancellable", "data": {"order": order}})
    (run,) = server.wait_for_runs(internal_id)
    assert requests.delete(f"{server.base_url}/v1/runs/{run['run_id']}", timeout=10).status_code == 200
    assert gql(server, RUN, run_id=run["run_id"])["run"]["status"] == "CANCELLED"
    assert gql(server, RUN, run_id="01UNKNOWNUNKNOWNUNKNOWN000") == {"run": None, "runTrigger": None}
