"""Hostile expressions against both stacks, with the official SDK: a trigger and a waitForEvent
`if` that fail at every evaluation, and an `if` over the depth limit (tests/sdk_expression_functions.py)."""
from __future__ import annotations

import pytest
import requests

from tests.events.test_expression_limits import PARENS_300
from tests.stacks import wait_for

pytestmark = pytest.mark.e2e


def failures(server, slug: str) -> list[tuple]:
    return server.query(
        "SELECT e.field, e.count, e.message FROM functions_expressionfailure e "
        "JOIN functions_function f ON f.id = e.function_id WHERE f.slug = %s", [slug])


def test_failing_trigger_expression_is_no_match_and_hurts_no_one_else(stack) -> None:
    server, app = stack
    (event_id,) = server.send({"name": "test/poisoned", "data": {"n": 1}})  # send() checks the 200
    (run,) = server.wait_for_runs(event_id)
    assert server.wait_for_end(run["run_id"])["output"] == "ok 1"
    slug = f"{app.app_id}-poisoned-trigger"
    ((field, count, message),) = wait_for(lambda: failures(server, slug), what="the failure to be recorded")
    assert field == 'trigger "test/poisoned" expression' and count >= 1 and "OverflowError" in message
    assert len(server.runs_of_event(event_id)) == 1  # only the function beside it
    metrics = requests.get(f"{server.base_url}/metrics", timeout=10).text
    assert f'inngest_expression_errors_total{{field="trigger \\"test/poisoned\\" expression",function="{slug}"}}' in metrics


def test_failing_wait_condition_is_no_match_until_the_timeout(stack) -> None:
    server, app = stack
    (trigger,) = server.send({"name": "test/poisoned-wait", "data": {"if": "async.data.n == date(1e300)", "timeout": 3}})
    (run,) = server.wait_for_runs(trigger)
    wait_for(lambda: server.query("SELECT 1 FROM runs_wait WHERE run_id = %s AND kind = 'event'", [run["run_id"]]),
             what="the wait to open")
    server.send([{"name": "test/poisoned-approve", "data": {"n": n}} for n in range(3)])
    ended = server.wait_for_end(run["run_id"])
    assert ended["status"] == "Completed" and ended["output"] == {"approval": None}
    recorded = failures(server, f"{app.app_id}-poisoned-wait")
    assert [(field, count) for field, count, _ in recorded] == [('waitForEvent "approval" if', 3)]


def test_wait_condition_over_the_depth_limit_fails_the_run_with_a_clear_error(stack) -> None:
    server, app = stack
    run = server.run_once({"name": "test/poisoned-wait", "data": {"if": PARENS_300}})
    assert run["status"] == "Failed"
    assert run["output"]["name"] == "InngestErrInvalidWait"
    assert run["output"]["message"] == "Invalid waitForEvent: the expression nests more than 75 brackets deep"
