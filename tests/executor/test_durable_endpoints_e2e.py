"""Durable Endpoints (issue 20) with the official JS SDK v4, in both modes: steps run inside the
app's own request and are checkpointed; a sleep or a retry takes the run async, the client is
redirected to the run's output, and the server calls the endpoint to finish it."""
from __future__ import annotations

from typing import Iterator

import pytest
import requests

from tests.endpoint_app import EndpointApp
from tests.stacks import ProductionStack, wait_for

pytestmark = pytest.mark.e2e
_apps: dict[str, EndpointApp] = {}


@pytest.fixture(scope="module", autouse=True)
def _stop_apps() -> Iterator[None]:
    yield
    for app in _apps.values():
        app.stop()
    _apps.clear()


@pytest.fixture
def endpoints(stack) -> tuple:
    server, _ = stack
    if server.base_url not in _apps:
        mode = "prod" if isinstance(server, ProductionStack) else "dev"
        _apps[server.base_url] = EndpointApp(server.base_url, f"endpoints-{mode}")
    return server, _apps[server.base_url]


def run_of(server, app: EndpointApp, route: str) -> dict:
    """The latest run of a route's function (its app is named by the route's origin)."""
    rows = server.query("SELECT r.id FROM runs_run r JOIN functions_function f ON f.id = r.function_id "
                        "WHERE f.slug = %s ORDER BY r.id DESC LIMIT 1", [f"{app.origin}-GET {route}"])
    assert rows, f"no run of GET {route}"
    return server.wait_for_end(rows[0][0])


def test_steps_run_in_the_request_and_the_run_is_recorded(endpoints) -> None:
    server, app = endpoints
    answer = requests.get(f"{app.origin}/sync?q=hi", timeout=30)
    assert answer.status_code == 200 and answer.json() == {"a": 1, "b": 2, "q": "hi"}
    run = run_of(server, app, "/sync")
    assert run["status"] == "Completed"
    assert run["output"]["status"] == 200 and run["output"]["body"] == '{"a":1,"b":2,"q":"hi"}'
    assert [(s["name"], s["output"]) for s in server.steps(run["run_id"])] == [("a", {"data": 1}), ("b", {"data": 2})]
    calls = [a for a in server.attempts(run["run_id"]) if not a["is_checkpointed"]]
    assert calls == []  # the server never called the endpoint: the request ran it all
    if not isinstance(server, ProductionStack):  # the UI is open in dev mode: the run is there with its steps
        page = requests.get(f"{server.base_url}/runs/{run['run_id']}", timeout=10)
        assert page.status_code == 200 and "GET /sync" in page.text and page.text.count("checkpointed") == 3  # two steps and the response


def test_a_sleep_redirects_to_the_output_and_the_server_finishes_the_run(endpoints) -> None:
    server, app = endpoints
    answer = requests.get(f"{app.origin}/sleeps", allow_redirects=False, timeout=30)
    assert answer.status_code == 302
    location = answer.headers["location"]
    assert location.startswith(f"{server.base_url}/v1/http/runs/") and "token=" in location
    output = requests.get(location, timeout=60)
    assert output.status_code == 200 and output.json() == "hello world"
    run = run_of(server, app, "/sleeps")
    assert run["status"] == "Completed"
    assert [s["name"] for s in server.steps(run["run_id"])] == ["a", "nap", "b"]
    calls = [a for a in server.attempts(run["run_id"]) if not a["is_checkpointed"]]
    assert calls and calls[-1]["opcode"] == "RunComplete"  # the server called the endpoint after the sleep


def test_the_output_needs_the_runs_own_token(endpoints) -> None:
    server, app = endpoints
    location = requests.get(f"{app.origin}/sleeps", allow_redirects=False, timeout=30).headers["location"]
    run_id = location.split("/v1/http/runs/")[1].split("/")[0]
    bad = requests.get(f"{server.base_url}/v1/http/runs/{run_id}/output?token=forged", timeout=10)
    assert bad.status_code == 401
    other = requests.get(location.replace(run_id, "01" + "0" * 24), timeout=10)
    assert other.status_code == 401
    server.wait_for_end(run_id)


def test_a_failing_step_is_retried_by_the_server(endpoints) -> None:
    server, app = endpoints
    answer = requests.get(f"{app.origin}/flaky", timeout=60)  # follows the redirect to the output
    # A Response returned in async mode reaches the output JSON-encoded once more, as with
    # Inngest's server (the SDK suite's asyncNoStream case asserts the same).
    assert answer.status_code == 200 and answer.json() == '{"value":"ok after a retry"}'
    run = run_of(server, app, "/flaky")
    assert run["status"] == "Completed"
    calls = [a for a in server.attempts(run["run_id"]) if not a["is_checkpointed"]]
    assert [a["opcode"] for a in calls][-1] == "RunComplete"  # the retry: the server called the endpoint
    wait_for(lambda: server.steps(run["run_id"]), what="the step")
    assert [s["output"] for s in server.steps(run["run_id"])] == [{"data": "ok after a retry"}]


def test_a_step_that_gives_up_fails_the_run(endpoints) -> None:
    server, app = endpoints
    answer = requests.get(f"{app.origin}/gives-up", allow_redirects=False, timeout=30)
    assert answer.status_code == 302  # the SDK reports the failed step and sends its client to the output
    rows = wait_for(lambda: server.query("SELECT r.id FROM runs_run r JOIN functions_function f ON f.id = r.function_id "
                                         "WHERE f.slug = %s", [f"{app.origin}-GET /gives-up"]), what="the run")
    run = server.wait_for_end(rows[0][0], timeout=20)
    assert run["status"] == "Failed"
    (step,) = server.steps(run["run_id"])
    assert step["name"] == "hopeless" and step["output"]["error"]["message"] == "no way"
