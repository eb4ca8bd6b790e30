"""Parallel steps end to end, in both modes: fan-out, targeted calls, one discovery per group."""
from __future__ import annotations

import pytest
import requests

pytestmark = pytest.mark.e2e


def test_parallel_groups_of_sequential_steps_make_the_same_calls_as_inngest(stack) -> None:
    server, app = stack
    run = server.run_once({"name": "test/parallel-groups", "data": {}})
    assert run["status"] == "Completed"
    assert run["output"] == [["a1", "a2"], ["b1", "b2"]]
    targets = [a["step_target"] for a in server.attempts(run["run_id"])]
    # discovery → a.1, b.1 → one discovery → a.2, b.2 → one discovery: 7 calls, as Inngest makes.
    assert len(targets) == 7
    assert [t == "step" for t in targets] == [True, False, False, True, False, False, True]
    assert sorted(s["name"] for s in server.steps(run["run_id"])) == ["a.1", "a.2", "b.1", "b.2"]


def test_parallel_group_of_five_steps_then_a_step_after(stack) -> None:
    server, app = stack
    run = server.run_once({"name": "test/parallel-five", "data": {}})
    assert run["status"] == "Completed"
    assert run["output"] == {"squares": [0, 1, 4, 9, 16], "sum": 30}
    names = [s["name"] for s in server.steps(run["run_id"])]
    assert sorted(names[:5]) == [f"square-{i}" for i in range(5)] and names[5] == "after"
    targets = [a["step_target"] for a in server.attempts(run["run_id"])]
    assert targets.count("step") == 3  # first discovery, once after the group, and the final call
    assert len(targets) == 8


def test_invoke_and_send_event_inside_a_parallel_group(stack) -> None:
    server, app = stack
    run = server.run_once({"name": "test/parallel-mixed", "data": {}})
    assert run["status"] == "Completed"
    assert run["output"] == [{"doubled": 8}, "local", 1, "after"]
    sent = requests.get(f"{server.base_url}/v1/events", params={"name": "test/parallel-sent"}, timeout=5).json()["data"]
    assert run["run_id"] in [e["data"]["from"] for e in sent]


def test_race_mode_groups_of_sequential_steps_complete_as_inngest_does(stack) -> None:
    server, app = stack
    run = server.run_once({"name": "test/race-groups", "data": {"seconds": 1.5}}, timeout=60)
    assert run["status"] == "Completed"
    assert run["output"] == [["f1", "f2"], ["s1", "s2"]]
    targets = [a["step_target"] for a in server.attempts(run["run_id"])]
    # One plan, four steps, a discovery after each step (race mode): 9 calls, as Inngest makes.
    assert len(targets) == 9 and targets.count("step") == 5
    assert [s["name"] for s in server.steps(run["run_id"])] == ["fast.1", "fast.2", "slow.1", "slow.2"]
