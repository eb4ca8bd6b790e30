"""The official JavaScript SDK (`inngest` on npm, v4 and v3) on Express against both modes:
steps, retries, sleep, wait for event, invoke, Promise.all, onFailure, cancellation, sendEvent."""
from __future__ import annotations

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
                                      "WHERE a.name = %s", [app.app_id])[0][0] >= 11, what="the JS app's functions")
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


def test_on_failure_gets_the_error_and_the_original_event(js) -> None:
    server, app = js
    tag = uuid.uuid4().hex[:8]
    run = server.run_once({"name": app.event("failing"), "data": {"tag": tag}})
    assert run["status"] == "Failed"
    handled = wait_for(lambda: app.seen().get(f"on-failure:{run['run_id']}"), what="the onFailure handler")
    assert handled == {"message": f"boom {tag}", "original": {"tag": tag}}


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
