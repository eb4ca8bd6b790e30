"""The official JavaScript SDK (`inngest` on npm, v4 and v3) on Express against both modes:
steps, retries, sleep, wait for event, invoke, Promise.all, onFailure, cancellation, sendEvent,
request and job ids, event sessions, and the GraphQL trace its own test harness reads."""
from __future__ import annotations

import json
import uuid
from typing import Iterator

import pytest
import requests

from tests.js_app import JsApp
from tests.stacks import ProductionStack, wait_for

pytestmark = pytest.mark.e2e
_apps: dict[tuple[str, str], JsApp] = {}


@pytest.fixture(scope="module", autouse=True)
def _stop_js_apps() -> Iterator[None]:
    yield
    for app in _apps.values():
        app.stop()
    _apps.clear()


@pytest.fixture(params=["v4", "v3"])
def js(request: pytest.FixtureRequest, stack) -> tuple:
    """(server, app): one Node app per package major per server mode, synced once."""
    server, _ = stack
    key = (server.base_url, request.param)
    if key not in _apps:
        mode = "prod" if isinstance(server, ProductionStack) else "dev"
        app = JsApp(request.param, server.base_url, f"js-{request.param}-{mode}")
        app.sync()
        wait_for(lambda: server.query("SELECT count(*) FROM functions_function f JOIN functions_app a ON a.id = f.app_id "
                                      "WHERE a.name = %s", [app.app_id])[0][0] >= 16, what="the JS app's functions")
        _apps[key] = app
    return server, _apps[key]


def test_steps_run_once_each_and_the_output_is_returned(js) -> None:
    server, app = js
    run = server.run_once({"name": app.event("three-steps"), "data": {"start": 1}})
    assert run["status"] == "Completed"
    assert run["output"]["result"] == {"one": 2, "two": 20}
    assert [s["name"] for s in server.steps(run["run_id"])] == ["one", "two", "three"]
    attempts = server.attempts(run["run_id"])
    calls = [a for a in attempts if not a["is_checkpointed"]]
    if app.major == "v4":
        # v4 checkpoints each step to /v1/checkpoint/{runId}/async inside one call, which ends
        # with RunComplete; each step is still in the history, marked as checkpointed.
        assert [a["opcode"] for a in calls] == ["RunComplete"]
        assert [a["opcode"] for a in attempts if a["is_checkpointed"]] == ["StepRun"] * 3
    else:
        assert len(calls) == 4  # one call per step and one to finish


def test_a_failing_step_is_retried_until_it_succeeds(js) -> None:
    server, app = js
    run = server.run_once({"name": app.event("flaky"), "data": {}})
    assert run["status"] == "Completed" and run["output"] == "third time lucky"
    assert [a["attempt"] for a in server.attempts(run["run_id"])][:3] == [0, 1, 2]


def test_sleep_resumes_after_its_duration(js) -> None:
    server, app = js
    run = server.run_once({"name": app.event("sleeps"), "data": {}})
    assert run["status"] == "Completed" and 1.0 <= run["output"]["slept"] < 5


def test_wait_for_event_matches_and_times_out(js) -> None:
    server, app = js
    order = uuid.uuid4().hex
    (internal_id,) = server.send({"name": app.event("waits"), "data": {"order": order}})
    (run,) = server.wait_for_runs(internal_id)
    wait_for(lambda: server.query("SELECT count(*) FROM runs_wait WHERE run_id = %s AND kind = 'event'", [run["run_id"]])[0][0],
             what="the wait to open")
    server.send({"name": app.event("approve"), "data": {"order": order, "by": "ana"}})
    assert server.wait_for_end(run["run_id"])["output"] == {"approval": {"order": order, "by": "ana"}}
    timed_out = server.run_once({"name": app.event("waits"), "data": {"order": uuid.uuid4().hex, "timeout": "1s"}})
    assert timed_out["output"] == {"approval": None}


def test_invoke_returns_the_childs_result_or_its_error(js) -> None:
    server, app = js
    assert server.run_once({"name": app.event("parent"), "data": {"n": 21}})["output"] == {"doubled": 42}
    failed = server.run_once({"name": app.event("parent"), "data": {"n": 1, "fail": True}})
    assert failed["status"] == "Completed" and "child gave up" in failed["output"]["caught"]


def test_promise_all_runs_steps_in_parallel(js) -> None:
    server, app = js
    run = server.run_once({"name": app.event("parallel"), "data": {}})
    assert run["output"] == {"values": [1, 4, 9], "total": 14}
    assert sorted(s["name"] for s in server.steps(run["run_id"])) == ["square-1", "square-2", "square-3", "total"]


def test_the_call_a_sleep_ending_a_parallel_group_makes_plans_the_next_step(js) -> None:
    server, app = js
    run = server.run_once({"name": app.event("parallel-sleep"), "data": {}})
    assert run["status"] == "Completed" and run["output"] == {"c": "abc"}
    calls = [(a["step_target"], a["opcode"]) for a in server.attempts(run["run_id"]) if not a["is_checkpointed"]]
    targeted = [opcode for target, opcode in calls if target != "step"]
    assert targeted == ["StepRun", "StepRun"]  # "a" in the group, then "b", planned by the sleep's call
    assert ("step", "StepPlanned") in calls
    assert [s["name"] for s in server.steps(run["run_id"])][-2:] == ["b", "c"]  # "c" ran at once, in a discovery call


def test_on_failure_gets_the_error_and_the_original_event(js) -> None:
    server, app = js
    tag = uuid.uuid4().hex[:8]
    run = server.run_once({"name": app.event("failing"), "data": {"tag": tag}})
    assert run["status"] == "Failed"
    handled = wait_for(lambda: app.seen().get(f"on-failure:{run['run_id']}"), what="the onFailure handler")
    assert handled["message"] == f"boom {tag}" and handled["original"] == {"tag": tag}
    # The failure event's error as Inngest shapes it: the driver's reason beside the SDK's error.
    # On its last attempt v4 answers 400 with X-Inngest-No-Retry, which Inngest words so; v3, a plain 500.
    assert handled["error"]["error"] == ("NonRetriableError" if app.major == "v4" else "invalid status code: 500")
    assert handled["error"]["name"] == "Error" and handled["error"]["message"] == f"boom {tag}"


def test_a_cancel_event_cancels_a_sleeping_run(js) -> None:
    server, app = js
    order = uuid.uuid4().hex
    (internal_id,) = server.send({"name": app.event("cancellable"), "data": {"order": order}})
    (run,) = server.wait_for_runs(internal_id)
    wait_for(lambda: server.query("SELECT count(*) FROM runs_wait WHERE run_id = %s AND kind = 'sleep'", [run["run_id"]])[0][0],
             what="the run to sleep")
    server.send({"name": app.event("cancel"), "data": {"order": order}})
    assert server.wait_for_end(run["run_id"], timeout=10)["status"] == "Cancelled"


def test_send_event_from_a_step_starts_other_runs(js) -> None:
    server, app = js
    run = server.run_once({"name": app.event("sender"), "data": {"start": 99}})
    (sent_id,) = run["output"]["ids"]
    (followup,) = server.wait_for_runs(sent_id)
    assert server.wait_for_end(followup["run_id"])["output"]["result"]["one"] == 100
    assert requests.get(f"{server.base_url}/v1/events/{sent_id}", headers=server.headers, timeout=5).json()["data"]["name"] \
        == app.event("three-steps")


def test_every_call_carries_a_request_id_and_a_job_id_kept_across_retries(js) -> None:
    server, app = js
    run = server.run_once({"name": app.event("call-ids"), "data": {}})
    assert run["status"] == "Completed" and run["output"] == "done"
    calls = app.seen()[f"call-ids:{run['run_id']}"]
    if app.major == "v3":  # v3 does not read the headers: its ctx has neither id
        assert all(request_id is None and job_id is None for _, request_id, job_id in calls)
        return
    (first, failed, retried) = calls  # the step's call, the discovery after it (500), its retry
    assert [attempt for attempt, _, _ in calls] == [0, 0, 1]
    assert len({request_id for _, request_id, _ in calls}) == 3 and all(request_id for _, request_id, _ in calls)
    assert failed[2] == retried[2] != first[2] and all(job_id for _, _, job_id in calls)


def test_a_checkpointing_calls_retry_keeps_its_job_id(js) -> None:
    server, app = js
    if app.major == "v3":
        pytest.skip("v3 neither checkpoints nor reads the job id")
    run = server.run_once({"name": app.event("call-ids-checkpointed"), "data": {}})
    assert run["status"] == "Completed" and run["output"] == "done"
    attempts = server.attempts(run["run_id"])
    assert [a["is_checkpointed"] for a in attempts if a["opcode"] == "StepRun"] == [True]  # "one" rode the failed call
    (failed, retried) = app.seen()[f"call-ids-checkpointed:{run['run_id']}"]
    assert (failed[0], retried[0]) == (0, 1)
    assert failed[1] == retried[1] == f"{run['run_id']}-step-0"


def test_an_events_sessions_reach_its_run_and_the_runs_it_starts(js) -> None:
    server, app = js
    if app.major == "v3":
        pytest.skip("sessions are a v4 feature: v3 neither sends nor reads them")
    tag = uuid.uuid4().hex[:8]
    meta = {"sessions": {"org": "acme", "n": 42}}
    run = server.run_once({"name": app.event("sessions"), "data": {"tag": tag}, "meta": meta})
    assert run["status"] == "Completed" and run["output"] == "invoke"
    for via in ("parent", "send", "invoke"):
        assert wait_for(lambda: app.seen().get(f"sessions:{tag}:{via}"), what=f"the {via} run") == {"org": "acme", "n": "42"}


RUN_TRACE = "query ($runId: String!) { run(runID: $runId) { status trace(preview: true) { status outputID } } }"
TRACE_OUTPUT = "query ($traceID: String!) { runTraceSpanOutputByID(outputID: $traceID) { data error { message name } } }"
STEPS = "query ($runId: String!) { run(runID: $runId) { trace(preview: true) { childrenSpans { name stepID spanID stepOp } } } }"
EVENT_V2 = "query Event($id: ULID!) { eventV2(id: $id) { idempotencyKey name raw } }"


def gql(server, query: str, **variables: str) -> dict:
    answer = requests.post(f"{server.base_url}/v0/gql", json={"query": query, "variables": variables}, timeout=10)
    assert answer.status_code == 200 and "errors" not in answer.json(), answer.text
    return answer.json()["data"]


def test_the_sdk_harness_reads_results_and_steps_through_the_trace(js) -> None:
    server, app = js
    (internal_id,) = server.send({"name": app.event("three-steps"), "data": {"start": 2}})
    (run,) = server.wait_for_runs(internal_id)
    server.wait_for_end(run["run_id"])
    root = gql(server, RUN_TRACE, runId=run["run_id"])["run"]["trace"]
    assert root["status"] == "COMPLETED"
    output = gql(server, TRACE_OUTPUT, traceID=root["outputID"])["runTraceSpanOutputByID"]
    assert json.loads(output["data"])["result"] == {"one": 3, "two": 30} and output["error"] is None
    spans = gql(server, STEPS, runId=run["run_id"])["run"]["trace"]["childrenSpans"]
    assert [(s["name"], s["stepOp"]) for s in spans] == [("one", "RUN"), ("two", "RUN"), ("three", "RUN")]
    assert all(s["stepID"] and s["spanID"] for s in spans)
    event = gql(server, EVENT_V2, id=internal_id)["eventV2"]
    assert event["name"] == app.event("three-steps") and json.loads(event["raw"])["data"] == {"start": 2}


def test_a_failed_runs_trace_holds_its_error(js) -> None:
    server, app = js
    run = server.run_once({"name": app.event("failing"), "data": {"tag": "trace"}})
    root = gql(server, RUN_TRACE, runId=run["run_id"])["run"]["trace"]
    assert root["status"] == "FAILED"
    output = gql(server, TRACE_OUTPUT, traceID=root["outputID"])["runTraceSpanOutputByID"]
    assert output == {"data": None, "error": {"message": "boom trace", "name": "Error"}}
