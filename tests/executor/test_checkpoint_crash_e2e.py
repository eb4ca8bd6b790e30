"""Async checkpointing survives the worker: a worker SIGKILLed while the JS v4 app is running
steps and checkpointing them loses no step, and the run ends as if nothing had happened."""
from __future__ import annotations

import signal
from typing import Iterator

import pytest
import redis

from tests.js_app import JsApp
from tests.stacks import ProductionStack, query_function, recreate_database, stack_redis_url, stop_process, wait_for

pytestmark = pytest.mark.e2e
DATABASE, REDIS_URL = "inngest_e2e_checkpoint", stack_redis_url(10)


@pytest.fixture(scope="module")
def crash_stack() -> Iterator[tuple[ProductionStack, JsApp]]:
    database_url = recreate_database(DATABASE)
    redis.Redis.from_url(REDIS_URL).flushdb()
    query, connection = query_function(database_url)
    stack = ProductionStack(database_url, REDIS_URL, query)
    app = None
    try:
        app = JsApp("v4", stack.base_url, "js-checkpoint-crash")
        app.sync()
        yield stack, app
    finally:
        if app is not None:
            app.stop()
        stack.stop()
        connection.close()
        recreate_database(DATABASE, create=False)


def test_a_worker_killed_while_the_app_checkpoints_loses_nothing(crash_stack) -> None:
    stack, app = crash_stack
    # Each step takes longer than the lease (3 s in tests): by the time the sweeper hands the
    # call to another worker, the first call's app is still running, and is told it is stale.
    (internal_id,) = stack.send({"name": app.event("slow-steps"), "data": {"ms": 1500}})
    (run,) = stack.wait_for_runs(internal_id)
    run_id = run["run_id"]
    stored = lambda: stack.query("SELECT count(*) FROM runs_step WHERE run_id = %s", [run_id])[0][0]  # noqa: E731
    wait_for(lambda: stored() >= 2, timeout=30, what="two steps checkpointed")
    before_kill = {s["name"] for s in stack.steps(run_id)}
    stop_process(stack.workers.pop(0), sig=signal.SIGKILL)
    stack.start_worker()

    ended = stack.wait_for_end(run_id, timeout=90)
    assert ended["status"] == "Completed" and ended["output"] == [1, 2, 3, 4, 5]
    steps = stack.steps(run_id)
    assert [s["name"] for s in steps] == [f"slow-{i}" for i in range(1, 6)]
    assert [s["output"] for s in steps] == [{"data": i} for i in range(1, 6)]
    runs_of = {i: app.seen().get(f"slow:{run_id}:{i}", 0) for i in range(1, 6)}
    # A step checkpointed before the kill never runs again; the one in flight may run twice.
    assert all(runs_of[int(name.split("-")[1])] == 1 for name in before_kill), runs_of
    assert all(1 <= count <= 2 for count in runs_of.values()), runs_of
    attempts = stack.attempts(run_id)
    assert sum(a["is_checkpointed"] for a in attempts) >= 2  # the steps came in as checkpoints, not answers
    calls = [a for a in attempts if not a["is_checkpointed"]]
    assert calls and calls[-1]["opcode"] == "RunComplete"
