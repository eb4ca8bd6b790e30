"""Every call ends in a recorded outcome, in both modes: answers the server cannot use are
recorded attempts, retried per policy, and fail the run when they never get better; values
PostgreSQL's jsonb cannot hold are stored and handed back as they were; the run limits hold."""
from __future__ import annotations

import json
from typing import Iterator

import pytest
import requests

from tests.scripted_app import ScriptedApp
from tests.stacks import DevStack, Stack

pytestmark = pytest.mark.e2e

ODD_VALUES = {"nul": {"s": "nul\u0000byte"}, "nan": {"nan": float("nan"), "inf": float("inf")}}


def same_json(a: object, b: object) -> bool:
    """Equal as JSON values, NaN included (NaN != NaN in Python)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


@pytest.mark.parametrize("kind", ODD_VALUES)
def test_a_step_output_jsonb_cannot_hold_is_stored_and_handed_back_as_it_was(stack, kind: str) -> None:
    server, app = stack
    run = server.run_once({"name": "test/odd-values", "data": {"kind": kind}})
    expected = ODD_VALUES[kind]
    assert run["status"] == "Completed" and same_json(run["output"], expected)
    run_id = run["run_id"]
    assert app.counters[f"odd:{run_id}"] == 1  # the step body ran once
    assert same_json(app.seen[f"odd:{run_id}"][-1], expected)  # the SDK got the same value back
    (step,) = server.steps(run_id)
    assert same_json(step["output"], {"data": expected})
    finished = server.query("SELECT data FROM events_event WHERE name = 'inngest/function.finished' AND data LIKE %s",
                            [f"%{run_id}%"])
    assert same_json(json.loads(finished[0][0])["result"], expected)


def test_a_lone_surrogate_the_python_sdk_cannot_read_back_fails_the_run_with_its_error(stack) -> None:
    """Stored and sent back as it was; the Python SDK's request parser (pydantic) refuses a lone
    surrogate escape, so every later call fails in the SDK, and the run fails after its retries."""
    server, app = stack
    run = server.run_once({"name": "test/odd-values", "data": {"kind": "surrogate"}})
    assert run["status"] == "Failed"
    run_id = run["run_id"]
    assert app.counters[f"odd:{run_id}"] == 1  # the step body ran once: its output was recorded
    assert server.steps(run_id)[0]["output"] == {"data": {"s": "half \ud800 pair"}}
    assert [a["status_code"] for a in server.attempts(run_id)] == [206, 500, 500]  # retries=1


@pytest.fixture(scope="module")
def scripted_apps() -> Iterator[dict[str, ScriptedApp]]:
    apps: dict[str, ScriptedApp] = {}
    yield apps
    for app in apps.values():
        app.stop()


@pytest.fixture
def scripted(stack, scripted_apps: dict[str, ScriptedApp]) -> tuple[Stack, ScriptedApp]:
    """The stack of this test's mode with the scripted app registered on it."""
    server, _ = stack
    if server.base_url not in scripted_apps:
        app = ScriptedApp()
        app.register(server.base_url, server.headers)
        scripted_apps[server.base_url] = app
    return server, scripted_apps[server.base_url]


def run_script(server: Stack, app: ScriptedApp, name: str) -> tuple[dict, list[dict], int]:
    """The ended run, its recorded attempts and how many times the app was called for it."""
    run = server.run_once({"name": f"scripted/{name}", "data": {}}, timeout=60)
    return run, server.attempts(run["run_id"]), app.calls[(name, run["run_id"])]


def test_lone_surrogates_are_stored_and_handed_back_as_the_app_sent_them(scripted) -> None:
    server, app = scripted
    run, attempts, calls = run_script(server, app, "surrogate")
    expected = {"s": "half \ud800 pair", "pair": "\U0001f600"}
    assert run["status"] == "Completed" and run["output"] == expected
    assert calls == 2 and app.bodies[("surrogate", run["run_id"])][-1]["steps"] == {"odd": {"data": expected}}


@pytest.mark.parametrize("name, error_name, message", [
    ("deep", "InngestErrInvalidResponse", "nested more than 200 levels"),
    ("bad-envelope", "InngestErrInvalidResponse", "status is not an HTTP status code"),
    ("long-id", "InngestErrInvalidResponse", "id is longer than 64 characters"),
    ("big-output", "InngestErrStepOutputTooLarge", "more than the limit of 100000"),
])
def test_an_answer_that_cannot_be_used_is_retried_then_fails_the_run(scripted, name: str, error_name: str, message: str) -> None:
    server, app = scripted
    run, attempts, calls = run_script(server, app, name)
    assert run["status"] == "Failed"
    assert run["output"]["name"] == error_name and message in run["output"]["message"]
    assert calls == 2  # retries (1) + 1, each recorded with what was wrong
    assert [(a["attempt"], a["error"]["name"]) for a in attempts] == [(0, error_name), (1, error_name)]
    if isinstance(server, DevStack):  # the UI shows it (production's UI needs a login)
        page = requests.get(f"{server.base_url}/runs/{run['run_id']}", timeout=10)
        assert page.status_code == 200 and error_name in page.text


def test_a_wait_for_an_event_name_no_event_can_have_fails_the_run_at_once(scripted) -> None:
    server, app = scripted
    run, attempts, calls = run_script(server, app, "long-wait-name")
    assert run["status"] == "Failed" and run["output"]["name"] == "InngestErrInvalidWait"
    assert "longer than 255 characters" in run["output"]["message"]
    assert calls == 1 and [a["error"]["name"] for a in attempts] == ["InngestErrInvalidWait"]


@pytest.mark.parametrize("name, error_name, expected_calls", [
    ("empty", "InngestErrNoProgress", 20),  # INNGEST_MAX_CALLS_WITHOUT_PROGRESS in tests/stacks.py
    ("many-steps", "InngestErrFunctionOverflowed", 31),  # 30 steps recorded, the 31st refused
    ("growing-state", "InngestErrStateOverflowed", 6),  # 5 steps of 90 kB fit in 500 kB, not 6
    ("same-step", "InngestErrNoProgress", 21),  # a step recorded once, then answered again and again
    ("same-sleep", "InngestErrNoProgress", 21),  # a sleep slept once, then answered again and again
])
def test_a_run_past_a_limit_fails_with_the_limit_named(scripted, name: str, error_name: str, expected_calls: int) -> None:
    server, app = scripted
    run, attempts, calls = run_script(server, app, name)
    assert run["status"] == "Failed" and run["output"]["name"] == error_name
    assert calls == expected_calls == len(attempts)
    assert attempts[-1]["error"]["name"] == error_name
    detail = requests.get(f"{server.base_url}/v1/runs/{run['run_id']}", headers=server.headers, timeout=10).json()
    assert detail["data"]["output"]["name"] == error_name
