"""A worker killed with SIGKILL in the middle of a step loses nothing (production mode)."""
from __future__ import annotations

import signal

import pytest

from tests.stacks import stop_process, wait_for

pytestmark = pytest.mark.e2e


def test_run_survives_a_worker_killed_mid_step(production_stack) -> None:
    server, app = production_stack
    app.slow_step_started.clear()
    (internal_id,) = server.send({"name": "test/slow-step", "data": {"seconds": 2}})
    (run,) = server.wait_for_runs(internal_id)
    run_id = run["run_id"]
    wait_for(app.slow_step_started.is_set, timeout=20, what="the slow step to start")

    # Kill every worker process while the slow step's call is in flight, then start a new one.
    for worker in list(server.workers):
        stop_process(worker, sig=signal.SIGKILL)
    server.workers.clear()
    server.start_worker()

    ended = server.wait_for_end(run_id, timeout=60)
    assert ended["status"] == "Completed"
    assert ended["output"] == {"steps": ["before", "slept", "after"]}
    steps = server.steps(run_id)
    assert [s["name"] for s in steps] == ["before", "slow", "after"]  # each step recorded once
    # The killed call never answered to anyone; the step ran again on the new worker.
    assert app.counters[f"slow:{run_id}"] == 2
