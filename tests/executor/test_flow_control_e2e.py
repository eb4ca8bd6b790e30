"""Flow control end to end with the official SDK, in both modes (protocol.md §6)."""
from __future__ import annotations

import time
import uuid

import pytest

from tests.sdk_flow_functions import LIMIT
from tests.stacks import ProductionStack, wait_for

pytestmark = pytest.mark.e2e


def ended_runs(server, ids: list[str], timeout: float = 60) -> list[dict]:
    runs = [server.wait_for_runs(internal_id)[0] for internal_id in ids]
    return [server.wait_for_end(run["run_id"], timeout=timeout) for run in runs]


def test_concurrency_limit_holds_with_several_worker_processes(stack) -> None:
    server, app = stack
    # Production: the stack's worker (4 processes) and a second worker node (2 more).
    extra = server.start_worker(2) if isinstance(server, ProductionStack) else None
    try:
        ids = server.send([{"name": "test/limited", "data": {"seconds": 0.4, "i": i}} for i in range(10)])
        ended = ended_runs(server, ids)
    finally:
        if extra is not None:
            extra.terminate()
            extra.wait(timeout=20)
    assert [run["status"] for run in ended] == ["Completed"] * 10
    assert app.in_flight.peak["limited"] == LIMIT  # reached, and never exceeded
    delayed = [run for run in ended if run["flow_control"]]
    assert len(delayed) >= 5
    assert all(run["flow_control"]["action"] == "delayed" for run in delayed)
    assert all(run["flow_control"]["reason"].startswith("concurrency: 2 at once") for run in delayed)


def test_keyed_concurrency_limits_each_key_on_its_own(stack) -> None:
    server, app = stack
    batch = uuid.uuid4().hex
    users = [f"{batch}-a", f"{batch}-b"]
    events = [{"name": "test/keyed-limit", "data": {"user": user, "batch": batch, "seconds": 0.4}} for user in users * 3]
    ended = ended_runs(server, server.send(events))
    assert [run["status"] for run in ended] == ["Completed"] * 6
    assert [app.in_flight.peak[f"keyed:{user}"] for user in users] == [1, 1]
    assert app.in_flight.peak[f"keyed:{batch}"] == 2  # the two keys ran side by side


def test_waiting_runs_start_in_order_and_priority_jumps_the_line(stack) -> None:
    server, app = stack
    batch = uuid.uuid4().hex

    def event(name: str, priority: int = 0, seconds: float = 0.05) -> dict:
        return {"name": "test/ordered", "data": {"batch": batch, "name": name, "priority": priority, "seconds": seconds}}

    ids = server.send(event("blocker", seconds=1.5))
    wait_for(lambda: app.seen[f"ordered:{batch}"], what="the blocker to start")
    ids += server.send([event("low-1"), event("low-2"), event("low-3")])
    ids += server.send(event("urgent", priority=60))
    ended = ended_runs(server, ids)
    assert [run["status"] for run in ended] == ["Completed"] * 5
    assert app.seen[f"ordered:{batch}"] == ["blocker", "urgent", "low-1", "low-2", "low-3"]


def test_throttle_delays_runs_and_drops_none(stack) -> None:
    server, app = stack
    group = uuid.uuid4().hex
    ended = ended_runs(server, server.send([{"name": "test/throttled", "data": {"group": group}} for _ in range(4)]))
    assert [run["status"] for run in ended] == ["Completed"] * 4
    starts = sorted(run["output"] for run in ended)
    # 2 per 2 s with a burst of 1: two start at once, then one a second.
    assert starts[1] - starts[0] < 0.9
    assert starts[3] - starts[0] >= 1.7
    delayed = [run["flow_control"] for run in ended if run["flow_control"]]
    assert len(delayed) == 2
    assert all(fc["action"] == "delayed" and fc["reason"].startswith("throttle: 2 starts per 2s") for fc in delayed)


def test_rate_limit_skips_runs_over_the_limit_and_records_them(stack) -> None:
    server, app = stack
    user, other = uuid.uuid4().hex, uuid.uuid4().hex
    ids = server.send([{"name": "test/rate-limited", "data": {"user": u}} for u in (user, user, user, other)])
    ended = ended_runs(server, ids)
    assert [run["status"] for run in ended] == ["Completed", "Skipped", "Skipped", "Completed"]
    assert [run["output"] for run in ended if run["status"] == "Completed"] == [user, other]
    for run in ended[1:3]:
        assert run["flow_control"]["action"] == "skipped"
        assert run["flow_control"]["reason"] == f"rate limit: more than 1 runs per 1m for key '{user}'"
    assert server.query("SELECT count(*) FROM runs_stepattempt WHERE run_id = %s", [ended[1]["run_id"]])[0][0] == 0


def test_debounce_runs_once_with_the_last_event(stack) -> None:
    server, app = stack
    user = uuid.uuid4().hex
    ids = []
    for n in range(3):
        ids += server.send({"name": "test/debounced", "data": {"user": user, "n": n}})
        time.sleep(0.2)
    (run,) = server.wait_for_runs(ids[-1], timeout=10)
    ended = server.wait_for_end(run["run_id"])
    assert ended["output"] == {"n": 2, "events": 1}
    assert ended["flow_control"]["reason"].startswith("debounce: started with the last event")
    time.sleep(1.5)  # nothing else starts for the earlier events
    assert server.runs_of_event(ids[0]) == [] and server.runs_of_event(ids[1]) == []


def test_debounce_timeout_caps_the_delay(stack) -> None:
    server, app = stack
    user = uuid.uuid4().hex
    ids = []
    for n in range(11):  # an event every 0.3 s for 3 s: a 1 s period alone would wait until the end
        ids += server.send({"name": "test/debounced", "data": {"user": user, "n": n}})
        time.sleep(0.3)
    started = [n for n, internal_id in enumerate(ids) if server.runs_of_event(internal_id)]
    assert started and started[0] < 10  # the 2 s timeout started a run while events were still coming


def test_batch_starts_one_run_with_all_events_when_full(stack) -> None:
    server, app = stack
    tenant = uuid.uuid4().hex
    ids = server.send([{"name": "test/batched", "data": {"tenant": tenant, "n": n}} for n in range(3)])
    (run,) = server.wait_for_runs(ids[0], timeout=10)
    ended = server.wait_for_end(run["run_id"])
    assert ended["output"] == [0, 1, 2]
    assert ended["flow_control"]["reason"] == "batch: 3 events, full"


def test_batch_times_out_with_the_events_it_has(stack) -> None:
    server, app = stack
    tenants = [uuid.uuid4().hex, uuid.uuid4().hex]
    ids = server.send([{"name": "test/batched", "data": {"tenant": tenants[n % 2], "n": n}} for n in range(4)])
    sent_at = time.monotonic()
    first, second = (server.wait_for_runs(ids[i], timeout=10)[0] for i in (0, 1))
    assert time.monotonic() - sent_at >= 1.5  # waited for the 2 s timeout: the batches were not full
    outputs = [server.wait_for_end(run["run_id"])["output"] for run in (first, second)]
    assert outputs == [[0, 2], [1, 3]]  # one batch per key


def test_large_batch_is_fetched_by_the_sdk_through_the_api(stack) -> None:
    server, app = stack
    app.seen["bodies:batched-large"].clear()
    ids = server.send([{"name": "test/batched-large", "data": {"blob": "x" * 40_000}} for _ in range(3)])
    (run,) = server.wait_for_runs(ids[0], timeout=10)
    ended = server.wait_for_end(run["run_id"])
    assert ended["status"] == "Completed"
    assert ended["output"] == {"sizes": [40_000] * 3, "blob": 50_000}
    bodies = app.seen["bodies:batched-large"]
    assert bodies and all(body["use_api"] is True and body["bytes"] < 65_536 for body in bodies)


def test_idempotency_key_allows_one_run_per_key(stack) -> None:
    server, app = stack
    order, other = uuid.uuid4().hex, uuid.uuid4().hex
    ids = []
    for value in (order, order, other):
        ids += server.send({"name": "test/idempotent", "data": {"order": value}})
    ended = ended_runs(server, ids)
    assert [run["status"] for run in ended] == ["Completed", "Skipped", "Completed"]
    assert ended[1]["flow_control"]["reason"] == f"idempotency: run {ended[0]['run_id']} already ran for this key in the last 24h"


def test_singleton_skip_skips_a_run_while_one_is_active(stack) -> None:
    server, app = stack
    user = uuid.uuid4().hex
    (first_id,) = server.send({"name": "test/singleton-skip", "data": {"user": user, "n": 1, "seconds": 2}})
    (first,) = server.wait_for_runs(first_id)
    (second,) = ended_runs(server, server.send({"name": "test/singleton-skip", "data": {"user": user, "n": 2, "seconds": 0}}))
    assert second["status"] == "Skipped"
    assert second["flow_control"] == {"action": "skipped", "reason": f"singleton: run {first['run_id']} is active for this key"}
    assert server.wait_for_end(first["run_id"])["output"] == 1
    (third,) = ended_runs(server, server.send({"name": "test/singleton-skip", "data": {"user": user, "n": 3, "seconds": 0}}))
    assert third["status"] == "Completed"  # the key is free again once the first run ended


def test_singleton_cancel_replaces_the_active_run(stack) -> None:
    server, app = stack
    user = uuid.uuid4().hex
    (first_id,) = server.send({"name": "test/singleton-cancel", "data": {"user": user, "n": 1, "seconds": 30}})
    (first,) = server.wait_for_runs(first_id)
    wait_for(lambda: server.query("SELECT count(*) FROM runs_wait WHERE run_id = %s AND kind = 'sleep'", [first["run_id"]])[0][0],
             what="the first run to go to sleep")
    (second,) = ended_runs(server, server.send({"name": "test/singleton-cancel", "data": {"user": user, "n": 2, "seconds": 0}}))
    assert second["status"] == "Completed" and second["output"] == 2
    cancelled = server.wait_for_end(first["run_id"], timeout=5)
    assert cancelled["status"] == "Cancelled"
    assert cancelled["flow_control"] == {"action": "cancelled", "reason": f"singleton: replaced by run {second['run_id']}"}
