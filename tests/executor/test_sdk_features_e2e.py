"""What the official SDKs do beyond the core protocol, end to end in both modes: signals
(`step.waitForSignal`, `POST /v1/signals`), deferred runs (`defer()`), run metadata (with the AI
calls a step makes), `step.fetch` (Gateway) and `step.ai.infer` (AIGateway) against a fake model server run here."""
from __future__ import annotations

import json
import uuid
from typing import Iterator

import pytest
import requests

from tests.fake_model_server import FakeModelServer
from tests.sdk_ai_functions import secret_for
from tests.js_app import JsApp
from tests.stacks import ProductionStack, Stack, wait_for

pytestmark = pytest.mark.e2e
_apps: dict[str, JsApp] = {}


@pytest.fixture(scope="module", autouse=True)
def _stop_apps() -> Iterator[None]:
    yield
    for app in _apps.values():
        app.stop()
    _apps.clear()


@pytest.fixture(scope="module")
def model() -> Iterator[FakeModelServer]:
    fake = FakeModelServer()
    yield fake
    fake.stop()


@pytest.fixture
def js(stack) -> tuple[Stack, JsApp]:
    """(server, app): the v4 features app (tests/js/features.mjs), one per server mode, synced once."""
    server, _ = stack
    if server.base_url not in _apps:
        mode = "prod" if isinstance(server, ProductionStack) else "dev"
        app = JsApp("v4", server.base_url, f"js-features-{mode}", script="features.mjs")
        app.sync()
        wait_for(lambda: server.query("SELECT count(*) FROM functions_function f JOIN functions_app a ON a.id = f.app_id "
                                      "WHERE a.name = %s", [app.app_id])[0][0] >= 10, what="the features app's functions")
        _apps[server.base_url] = app
    return server, _apps[server.base_url]


def _start(server: Stack, event: dict) -> str:
    (internal_id,) = server.send(event)
    (run,) = server.wait_for_runs(internal_id)
    return run["run_id"]


def _wait_signal_open(server: Stack, run_id: str) -> None:
    wait_for(lambda: server.query("SELECT count(*) FROM runs_wait WHERE run_id = %s AND kind = 'signal'", [run_id])[0][0],
             what="the signal wait to open")


def _signal(server: Stack, signal: str, data: object) -> requests.Response:
    return requests.post(f"{server.base_url}/v1/signals", json={"signal": signal, "data": data}, headers=server.headers, timeout=10)


# --- signals ---------------------------------------------------------------------------------

def test_a_signal_resumes_the_run_waiting_for_it_with_its_data(js) -> None:
    server, app = js
    signal = f"order-{uuid.uuid4().hex}"
    run_id = _start(server, {"name": app.event("wait-signal"), "data": {"signal": signal}})
    _wait_signal_open(server, run_id)
    answer = _signal(server, signal, {"approved": True})
    assert answer.status_code == 200 and answer.json() == {"data": {"run_id": run_id}}
    assert server.wait_for_end(run_id)["output"] == {"got": {"signal": signal, "data": {"approved": True}}}
    assert _signal(server, signal, {}).status_code == 404  # nothing waits any more
    assert [s["op"] for s in server.steps(run_id)] == ["WaitForSignal"]


def test_a_signal_wait_times_out_with_null(js) -> None:
    server, app = js
    run = server.run_once({"name": app.event("wait-signal"), "data": {"signal": uuid.uuid4().hex, "timeout": "1s"}})
    assert run["status"] == "Completed" and run["output"] == {"got": None}


def test_step_send_signal_resumes_another_run(js) -> None:
    server, app = js
    signal = uuid.uuid4().hex
    waiter = _start(server, {"name": app.event("wait-signal"), "data": {"signal": signal}})
    _wait_signal_open(server, waiter)
    sender = server.run_once({"name": app.event("send-signal"), "data": {"signal": signal, "payload": [1, 2]}})
    assert sender["output"] == {"sent": {"runId": waiter}}
    assert server.wait_for_end(waiter)["output"]["got"]["data"] == [1, 2]


def test_a_signal_name_is_held_by_one_run_fail_or_replace_and_freed_by_cancelling(js) -> None:
    server, app = js
    signal = uuid.uuid4().hex
    first = _start(server, {"name": app.event("wait-signal"), "data": {"signal": signal}})
    _wait_signal_open(server, first)
    refused = server.run_once({"name": app.event("wait-signal"), "data": {"signal": signal, "conflict": "fail"}})
    assert refused["status"] == "Failed" and "Signal conflict" in json.dumps(refused["output"])
    replacing = _start(server, {"name": app.event("wait-signal"), "data": {"signal": signal, "conflict": "replace"}})
    _wait_signal_open(server, replacing)
    assert server.query("SELECT signal FROM runs_wait WHERE run_id = %s AND kind = 'signal'", [first]) == [("",)]
    assert _signal(server, signal, "second").json()["data"]["run_id"] == replacing
    assert server.wait_for_end(replacing)["output"]["got"]["data"] == "second"
    # The first run still waits, for nothing now, until it is cancelled; then its wait is gone.
    server.send({"name": app.event("cancel-signal"), "data": {"signal": signal}})
    assert server.wait_for_end(first)["status"] == "Cancelled"
    assert server.query("SELECT count(*) FROM runs_wait WHERE run_id = %s", [first]) == [(0,)]


def test_cancelling_a_run_frees_its_signal(js) -> None:
    server, app = js
    signal = uuid.uuid4().hex
    run_id = _start(server, {"name": app.event("wait-signal"), "data": {"signal": signal}})
    _wait_signal_open(server, run_id)
    assert requests.delete(f"{server.base_url}/v1/runs/{run_id}", headers=server.headers, timeout=10).status_code == 200
    assert server.wait_for_end(run_id)["status"] == "Cancelled"
    assert _signal(server, signal, {}).status_code == 404


# --- defer -----------------------------------------------------------------------------------

def test_a_deferred_run_starts_when_its_parent_ends_and_an_aborted_one_never(js) -> None:
    server, app = js
    run = server.run_once({"name": app.event("defers"), "data": {"n": 21}})
    assert run["status"] == "Completed" and run["output"] == {"doubled": 42}
    kept = wait_for(lambda: app.seen().get(f"deferred:{run['run_id']}:kept"), what="the deferred run")
    assert kept["data"] == {"label": "kept", "n": 21}  # the SDK strips the server's _inngest part
    assert kept["parent"]["runId"] == run["run_id"] and kept["parent"]["fnSlug"] == f"{app.app_id}-defers"
    statuses = dict(server.query("SELECT d.status, count(*) FROM runs_rundefer d WHERE d.run_id = %s GROUP BY d.status", [run["run_id"]]))
    assert statuses == {"after_run": 1, "aborted": 1}
    events = server.query("SELECT data FROM events_event WHERE name = 'inngest/deferred.schedule' AND data LIKE %s",
                          [f"%{run['run_id']}%"])
    assert len(events) == 1 and f"deferred:{run['run_id']}:dropped" not in app.seen()


def test_defers_reported_in_checkpoints_start_and_abort_as_in_answers(js) -> None:
    server, app = js
    run = server.run_once({"name": app.event("defers-checkpointed"), "data": {"n": 4}})
    assert run["status"] == "Completed" and run["output"] == 8
    kept = wait_for(lambda: app.seen().get(f"deferred:{run['run_id']}:kept"), what="the deferred run")
    assert kept["data"] == {"label": "kept", "n": 4}
    statuses = dict(server.query("SELECT d.status, count(*) FROM runs_rundefer d WHERE d.run_id = %s GROUP BY d.status", [run["run_id"]]))
    assert statuses == {"after_run": 1, "aborted": 1}
    checkpointed = server.query("SELECT count(*) FROM runs_stepattempt WHERE run_id = %s AND is_checkpointed", [run["run_id"]])
    assert checkpointed[0][0] >= 2  # the steps did ride checkpoints


def test_a_deferred_run_inherits_its_callers_sessions_under_its_own(js) -> None:
    server, app = js
    event = {"name": app.event("defers"), "data": {"n": 2}, "meta": {"sessions": {"org": "acme", "team": "core"}}}
    plain = server.run_once(event)
    event["data"]["deferSessions"] = {"org": "override", "team": None}
    layered = server.run_once(event)
    for run in (plain, layered):
        assert run["status"] == "Completed"
    seen = [wait_for(lambda: app.seen().get(f"deferred:{run['run_id']}:kept"), what="the deferred run") for run in (plain, layered)]
    assert seen[0]["sessions"] == {"org": "acme", "team": "core"}
    assert seen[1]["sessions"] == {"org": "override"}  # the defer's own key wins, its null cuts an inherited one
    metas = server.query("SELECT meta FROM events_event WHERE name = 'inngest/deferred.schedule' AND data LIKE %s",
                         [f"%{layered['run_id']}%"])
    assert [json.loads(meta) for (meta,) in metas] == [{"sessions": {"org": "override"}}]


def test_a_failed_parent_still_starts_its_deferred_run(js) -> None:
    server, app = js
    run = server.run_once({"name": app.event("defers"), "data": {"n": 1, "fail": True}}, timeout=60)
    assert run["status"] == "Failed"
    wait_for(lambda: app.seen().get(f"deferred:{run['run_id']}:kept"), what="the failed parent's deferred run")


# --- run metadata ----------------------------------------------------------------------------

def test_metadata_set_in_steps_and_through_the_api_is_kept(js) -> None:
    server, app = js
    first = server.run_once({"name": app.event("metadata"), "data": {"n": 7}})
    assert first["status"] == "Completed"
    rows = server.query("SELECT scope, step_id, kind, op, \"values\" FROM runs_runmetadata WHERE run_id = %s ORDER BY id", [first["run_id"]])
    kinds = {(scope, kind): json.loads(values) for scope, _, kind, _, values in rows}
    assert kinds[("step", "userland.default")] == {"stage": "inside", "n": 7}
    assert kinds[("run", "userland.quality")] == {"score": 0.5}
    # A second run tags the first one: through POST /v1/runs/{id}/metadata.
    second = server.run_once({"name": app.event("metadata"), "data": {"n": 8, "otherRun": first["run_id"]}})
    assert second["status"] == "Completed"
    api_rows = server.query("SELECT count(*) FROM runs_runmetadata WHERE run_id = %s", [first["run_id"]])[0][0]
    assert api_rows == len(rows) + 1


def test_the_metadata_endpoint_checks_what_it_stores(js) -> None:
    server, app = js
    run = server.run_once({"name": app.event("wait-signal"), "data": {"signal": uuid.uuid4().hex, "timeout": "1s"}})
    url = f"{server.base_url}/v1/runs/{run['run_id']}/metadata"
    good = {"target": {"run_id": run["run_id"]}, "metadata": [{"kind": "userland.cost", "op": "merge", "values": {"usd": 1.5}}]}
    assert requests.post(url, json=good, headers=server.headers, timeout=10).status_code == 200
    bad_op = {"target": {}, "metadata": [{"kind": "userland.cost", "op": "explode", "values": {}}]}
    answer = requests.post(url, json=bad_op, headers=server.headers, timeout=10)
    assert answer.status_code == 400 and "op must be one of" in answer.json()["error"]
    no_step = {"target": {"step_attempt": 1}, "metadata": good["metadata"]}
    assert requests.post(url, json=no_step, headers=server.headers, timeout=10).status_code == 400
    unknown = f"{server.base_url}/v1/runs/01HZZZZZZZZZZZZZZZZZZZZZZZ/metadata"
    assert requests.post(unknown, json=good, headers=server.headers, timeout=10).status_code == 404


STEP_METADATA = """query ($runId: String!) { run(runID: $runId) { trace(preview: true) {
  metadata { scope kind values } childrenSpans { name metadata { scope kind values } } } } }"""


@pytest.mark.parametrize("function", ["ai-steps", "ai-steps-checkpointed"])
def test_a_steps_ai_calls_become_its_inngest_ai_metadata_with_an_estimated_cost(js, function: str) -> None:
    server, app = js
    run = server.run_once({"name": app.event(function), "data": {"n": 3}}, timeout=60)
    assert run["status"] == "Completed" and run["output"] == 3
    answer = requests.post(f"{server.base_url}/v0/gql", json={"query": STEP_METADATA, "variables": {"runId": run["run_id"]}}, timeout=10)
    root = answer.json()["data"]["run"]["trace"]
    spans = {span["name"]: span["metadata"] for span in root["childrenSpans"]}
    (asked,) = [m for m in spans["asks-twice"] if m["kind"] == "inngest.ai"]
    # The SDK sums the step's two calls; the server prices the last model named (a dated
    # snapshot of gpt-4.1-nano: $0.10 and $0.40 per million tokens in and out).
    assert asked["scope"] == "step" and asked["values"] == {
        "operation_name": "chat", "request_model": "gpt-4.1-nano-2025-04-14", "provider": "openai",
        "input_tokens": 150, "output_tokens": 15, "latency_ms": asked["values"]["latency_ms"],
        "estimated_cost": round((150 * 0.10 + 15 * 0.40) / 1e6, 6),
    }
    assert not [m for m in spans["asks-nothing"] if m["kind"] == "inngest.ai"]  # the call between steps is no step's
    if function == "ai-steps-checkpointed":
        checkpointed = server.query("SELECT step_name FROM runs_stepattempt WHERE run_id = %s AND is_checkpointed", [run["run_id"]])
        assert ("asks-twice",) in checkpointed
        assert {"scope": "run", "kind": "inngest.score", "values": {"helpful": {"value": 1}}} in root["metadata"]
        wait_for(lambda: app.seen().get(f"deferred:{run['run_id']}:from-a-checkpointed-step"), what="the checkpointed step's deferred run")


# --- step.fetch and step.ai.infer ------------------------------------------------------------

def _assert_secret_kept(server: Stack, secret: str, run_id: str) -> None:
    """Not in any row of any table, nor in the run's REST answer."""
    assert secret not in json.dumps(_all_rows(server), default=str)
    assert secret not in requests.get(f"{server.base_url}/v1/runs/{run_id}", headers=server.headers, timeout=10).text


def _all_rows(server: Stack) -> list:
    if isinstance(server, ProductionStack):
        tables = [t for (t,) in server.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'", [])]
    else:
        tables = [t for (t,) in server.query("SELECT name FROM sqlite_master WHERE type = 'table'", [])]
    return [server.query(f'SELECT * FROM "{table}"', []) for table in tables]


def test_step_fetch_is_made_by_the_server_and_memoized(js, model) -> None:
    server, app = js
    tag = uuid.uuid4().hex
    secret = secret_for("fetch", tag)
    run = server.run_once({"name": app.event("fetch"), "data": {"url": f"{model.url}/echo", "tag": tag}})
    assert run["output"] == {"status": 200, "body": {"method": "GET", "path": "/echo", "tag": tag}}
    (request,) = model.requests_with(tag)
    assert request["headers"]["authorization"] == f"Bearer {secret}"
    (step,) = server.steps(run["run_id"])
    assert step["op"] == "Gateway" and step["output"]["data"]["status_code"] == 200
    _assert_secret_kept(server, secret, run["run_id"])


def test_production_refuses_link_local_and_private_addresses(stack) -> None:
    server, _ = stack
    if not isinstance(server, ProductionStack):
        pytest.skip("dev mode allows every address")
    app = _apps.get(server.base_url) or JsApp("v4", server.base_url, "js-features-prod", script="features.mjs")
    if server.base_url not in _apps:
        app.sync()
        _apps[server.base_url] = app
    run = server.run_once({"name": app.event("fetch"), "data": {"url": "http://169.254.169.254/latest/meta-data", "tag": "x"}})
    assert "169.254.169.254" in run["output"]["caught"] and "link-local" in run["output"]["caught"]


@pytest.mark.parametrize("format_name", ["openai", "anthropic", "gemini", "azure"])
def test_step_ai_infer_authenticates_as_each_format_wants(js, model, format_name: str) -> None:
    server, app = js
    prompt = f"hello {uuid.uuid4().hex}"
    key = secret_for(f"sk-{format_name}", prompt)
    run = server.run_once({"name": app.event("infer"), "data": {"format": format_name, "url": model.url, "prompt": prompt}})
    (request,) = model.requests_with(prompt)
    headers, query = request["headers"], request["query"]
    expected = {
        "openai": lambda: headers["authorization"] == f"Bearer {key}",
        "anthropic": lambda: headers["x-api-key"] == key and "authorization" not in headers,
        "gemini": lambda: key in query["key"] and "authorization" not in headers,
        "azure": lambda: headers["api-key"] == key and "api-version" in query,
    }[format_name]
    assert expected(), request
    assert run["output"]["answer"]["choices"][0]["message"]["content"].startswith("echo: ")
    assert [s["op"] for s in server.steps(run["run_id"])] == ["AIGateway"]
    _assert_secret_kept(server, key, run["run_id"])


def test_a_failing_model_is_retried_per_the_functions_policy(js, model) -> None:
    server, app = js
    prompt = f"flaky {uuid.uuid4().hex}"
    run = server.run_once({"name": app.event("infer"), "data": {"format": "openai", "url": model.url, "prompt": prompt,
                                                               "failFirst": 1}})
    assert run["output"]["answer"]["choices"][0]["message"]["content"] == f"echo: {prompt}"
    assert len(model.requests_with(prompt)) == 2
    down = f"down {uuid.uuid4().hex}"
    gave_up = server.run_once({"name": app.event("infer"), "data": {"format": "openai", "url": model.url, "prompt": down,
                                                                   "failFirst": 9}})
    assert "unsuccessful status code: 500" in gave_up["output"]["caught"]
    assert len(model.requests_with(down)) == 3  # three attempts: retries 2


def test_an_unreachable_model_error_never_shows_the_key(js) -> None:
    server, app = js
    prompt = uuid.uuid4().hex
    key = secret_for("sk-gemini", prompt)
    dead = "http://127.0.0.1:9"  # discard port: nothing listens
    run = server.run_once({"name": app.event("infer"), "data": {"format": "gemini", "url": dead, "prompt": prompt}}, timeout=60)
    assert "caught" in run["output"] and key not in run["output"]["caught"]
    _assert_secret_kept(server, key, run["run_id"])


def test_python_step_ai_infer(stack, model) -> None:
    server, _ = stack
    prompt = f"python {uuid.uuid4().hex}"
    key = secret_for("sk-py", prompt)
    run = server.run_once({"name": "test/ai-infer", "data": {"url": f"{model.url}/v1", "prompt": prompt, "team": "blue"}})
    assert run["status"] == "Completed", run
    assert run["output"]["answer"]["choices"][0]["message"]["content"] == f"echo: {prompt}"
    (request,) = model.requests_with(prompt)
    assert request["headers"]["authorization"] == f"Bearer {key}" and request["headers"]["x-team"] == "blue"
    assert request["path"] == "/v1/chat/completions" and request["body"]["model"] == "gpt-test"
    _assert_secret_kept(server, key, run["run_id"])
