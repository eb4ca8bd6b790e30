"""step.invoke and POST /invoke/{slug} end to end, in both modes, with the official SDK."""
from __future__ import annotations

import pytest
import requests

pytestmark = pytest.mark.e2e


def test_invoke_returns_the_child_result(stack) -> None:
    server, app = stack
    run = server.run_once({"name": "test/invoker", "data": {"value": 21}})
    assert run["status"] == "Completed"
    assert run["output"] == {"child": {"doubled": 42}}
    (memo,) = server.steps(run["run_id"])
    assert memo["op"] == "InvokeFunction" and memo["output"] == {"data": {"doubled": 42}}


def test_invoke_of_a_failing_child_raises_its_error_in_the_parent(stack) -> None:
    server, app = stack
    run = server.run_once({"name": "test/invoker", "data": {"value": 3, "fail": True}})
    assert run["status"] == "Completed"  # the parent caught the StepError
    assert run["output"]["error"]["message"] == "child refused 3"


def test_invoke_times_out_when_the_child_is_too_slow(stack) -> None:
    server, app = stack
    run = server.run_once({"name": "test/invoker", "data": {"value": 1, "sleep": 5, "timeout": 1}})
    assert run["status"] == "Completed"
    assert run["output"]["error"] == {"name": "InngestInvokeTimeoutError",
                                      "message": "Timed out waiting for invoked function to complete"}


def test_invoke_endpoint_runs_a_function_directly(stack) -> None:
    server, app = stack
    answer = requests.post(f"{server.base_url}/invoke/{app.app_id}-invokee", json={"data": {"value": 5}}, timeout=5)
    assert answer.status_code == 200 and answer.json()["status"] == 200
    (run,) = server.wait_for_runs(answer.json()["id"])
    ended = server.wait_for_end(run["run_id"])
    assert ended["output"] == {"doubled": 10}


def test_invoke_endpoint_refuses_an_unknown_function(stack) -> None:
    server, app = stack
    answer = requests.post(f"{server.base_url}/invoke/nope-nothing", json={"data": {}}, timeout=5)
    assert answer.status_code == 404 and answer.json()["status"] == 404
