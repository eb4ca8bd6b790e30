"""Chaos: a steady load of runs while workers are SIGKILLed, Redis comes back empty, PostgreSQL
goes away for a while, and apps misbehave. Nothing acknowledged may be lost or recorded twice.

Production mode (gunicorn, the timer worker and beat from `manage.py start`, two call workers)
on a throwaway PostgreSQL and Redis of its own. CI runs a short load (CHAOS_RUNS=40 runs per fault); the full
proof is `CHAOS_RUNS=500 bash .ci/run -m chaos -s` (see README).
"""
from __future__ import annotations

import collections
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Iterator

import pytest
import requests

from tests.chaos.apps import BAD_BEHAVIOURS, FLOW_EVENT, FLOW_STEPS, BadApp, FlowApp
from tests.chaos.infra import ThrowawayPostgres, ThrowawayRedis, reconnecting_query
from tests.stacks import ProductionStack, stop_process, wait_for

pytestmark = [pytest.mark.chaos, pytest.mark.e2e]

RUNS = int(os.environ.get("CHAOS_RUNS", "40"))
PG_OUTAGE_SECONDS = float(os.environ.get("CHAOS_PG_OUTAGE_SECONDS", "10"))
CALL_TIMEOUT_SECONDS = 3
# The load spans the faults: at least this long, and no faster than the stack can keep up with.
LOAD_SECONDS = max(12.0, RUNS / 25)


@dataclass
class Chaos:
    stack: ProductionStack
    postgres: ThrowawayPostgres
    redis: ThrowawayRedis
    app: FlowApp


@pytest.fixture(scope="module")
def chaos() -> Iterator[Chaos]:
    postgres = ThrowawayPostgres()
    redis_server = ThrowawayRedis()
    stack = app = None
    try:
        database_url = postgres.create_database("chaos")
        stack = ProductionStack(database_url, redis_server.url, reconnecting_query(database_url), workers=2,
                                extra_env={"INNGEST_LOST_MESSAGE_SECONDS": "3",
                                           "INNGEST_CALL_TIMEOUT_SECONDS": str(CALL_TIMEOUT_SECONDS)})
        app = FlowApp(stack.base_url)
        app.sync()
        yield Chaos(stack, postgres, redis_server, app)
    finally:
        if stack:
            stack.stop()
        if app:
            app.stop()
        redis_server.kill()
        postgres.destroy()


@dataclass
class SteadyLoad:
    """Sends RUNS single-event requests at a steady rate, as a client SDK would: an event that is
    not acknowledged (5xx, connection error) is sent again until it is. Only 200s count as sent."""

    base_url: str
    scenario: str
    runs: int = RUNS
    seconds: float = LOAD_SECONDS
    accepted: dict[str, int] = field(default_factory=dict)  # internal event id -> n
    failures: collections.Counter[str] = field(default_factory=collections.Counter)
    failure_times: list[float] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # 4xx: must never happen to a valid event

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._send_all, daemon=True)
        self._session = requests.Session()

    def start(self) -> "SteadyLoad":
        self._thread.start()
        return self

    def join(self) -> None:
        self._thread.join(timeout=self.seconds + 300)
        assert not self._thread.is_alive(), "the load generator did not finish"

    def _send_all(self) -> None:
        started = time.monotonic()
        for n in range(self.runs):
            delay = started + n * self.seconds / self.runs - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self._send_until_accepted(n)

    def _send_until_accepted(self, n: int) -> None:
        event = {"name": FLOW_EVENT, "data": {"n": n, "scenario": self.scenario}}
        while True:
            try:
                answer = self._session.post(f"{self.base_url}/e/chaos-key", json=event, timeout=30)
            except requests.RequestException as exc:
                self._failed(type(exc).__name__)
                continue
            if answer.status_code == 200:
                (internal_id,) = answer.json()["ids"]
                self.accepted[internal_id] = n
                return
            if answer.status_code < 500:
                self.rejected.append(f"{answer.status_code} {answer.text[:200]}")
                return
            self._failed(str(answer.status_code))

    def _failed(self, what: str) -> None:
        self.failures[what] += 1
        self.failure_times.append(time.monotonic())
        time.sleep(0.2)


@dataclass
class Outcome:
    started: int
    completed: int
    lost: int
    duplicate_outputs: int
    mismatched_outputs: int
    unstored_acknowledged: int
    run_ids: set[str]

    def line(self, scenario: str, load: SteadyLoad, app: FlowApp) -> str:
        return (f"chaos[{scenario}]: runs started {self.started}, completed {self.completed}, lost {self.lost}, "
                f"duplicate step outputs {self.duplicate_outputs}, outputs not matching the recorded steps "
                f"{self.mismatched_outputs}, acknowledged events not stored {self.unstored_acknowledged}; "
                f"unacknowledged sends {dict(load.failures)}; step bodies re-executed {app.re_executed_steps(self.run_ids)}")


def settle(chaos: Chaos, load: SteadyLoad, timeout: float) -> Outcome:
    """Waits until every acknowledged event's run has ended (or the timeout), then counts."""
    ids = list(load.accepted)
    query = chaos.stack.query

    def ended() -> bool:
        rows = query("SELECT count(*) FROM runs_run r JOIN events_event e ON e.id = r.event_id "
                     "WHERE e.internal_id = ANY(%s) AND r.status IN ('completed', 'failed', 'cancelled')", [ids])
        return rows[0][0] >= len(ids)

    try:
        wait_for(ended, timeout=timeout, interval=1.0, what="every acknowledged event's run to end")
    except AssertionError:
        pass  # counted as lost below
    stored = query("SELECT count(*) FROM events_event WHERE internal_id = ANY(%s)", [ids])[0][0]
    runs = query("SELECT r.id, r.status, r.output::jsonb, e.data::jsonb FROM runs_run r JOIN events_event e ON e.id = r.event_id "
                 "WHERE e.internal_id = ANY(%s)", [ids])
    steps = collections.defaultdict(list)
    for run_id, name, output in query("SELECT run_id, name, output::jsonb FROM runs_step WHERE run_id = ANY(%s) AND name = ANY(%s)",
                                      [[r[0] for r in runs], list(FLOW_STEPS)]):
        steps[run_id].append((name, output))
    completed = mismatched = duplicates = 0
    for run_id, status, output, data in runs:
        recorded = collections.Counter(name for name, _ in steps[run_id])
        duplicates += sum(count - 1 for count in recorded.values() if count > 1)
        if status != "completed":
            continue
        completed += 1
        expected = {name: value["data"] for name, value in steps[run_id]}  # stored as the SDK's memo: {"data": ...}
        n = data["n"]
        if output != expected or expected["one"]["n"] != n or expected["two"]["n"] != n * 2:
            mismatched += 1
    return Outcome(started=len(runs), completed=completed, lost=len(ids) - completed, duplicate_outputs=duplicates,
                   mismatched_outputs=mismatched, unstored_acknowledged=len(ids) - stored, run_ids={r[0] for r in runs})


def assert_nothing_lost(chaos: Chaos, load: SteadyLoad, scenario: str) -> Outcome:
    outcome = settle(chaos, load, timeout=120 + RUNS / 5)
    print("\n" + outcome.line(scenario, load, chaos.app))
    assert load.rejected == []
    assert len(load.accepted) == RUNS
    assert outcome.unstored_acknowledged == 0
    assert outcome.started == RUNS
    assert (outcome.lost, outcome.duplicate_outputs, outcome.mismatched_outputs) == (0, 0, 0)
    return outcome


def test_workers_sigkilled_five_times(chaos: Chaos) -> None:
    load = SteadyLoad(chaos.stack.base_url, "sigkill").start()
    for _ in range(5):
        time.sleep(LOAD_SECONDS / 6)
        victim = chaos.stack.workers.pop(0)  # the oldest: the workers take turns
        stop_process(victim, sig=signal.SIGKILL)  # the whole worker: main process and its pool
        chaos.stack.start_worker()
    load.join()
    assert_nothing_lost(chaos, load, "sigkill a worker x5")


def test_redis_restarted_without_its_data(chaos: Chaos) -> None:
    load = SteadyLoad(chaos.stack.base_url, "redis").start()
    time.sleep(LOAD_SECONDS / 2)
    chaos.redis.restart_empty()
    load.join()
    assert_nothing_lost(chaos, load, "redis restarted empty")


def test_postgres_down_for_a_while(chaos: Chaos) -> None:
    load = SteadyLoad(chaos.stack.base_url, "postgres").start()
    time.sleep(LOAD_SECONDS / 3)
    chaos.postgres.stop("immediate")
    down_from = time.monotonic()
    time.sleep(PG_OUTAGE_SECONDS)
    down_until = time.monotonic()
    chaos.postgres.start()
    load.join()
    assert_nothing_lost(chaos, load, f"postgres down {PG_OUTAGE_SECONDS:g}s")
    # /e/ said so while the database was away (gunicorn stayed up, so these are 5xx answers, not
    # refused connections); the outcome above shows none of its 200s was for an unstored event.
    during = [t for t in load.failure_times if down_from <= t <= down_until + 1]
    assert during, "no event was refused while PostgreSQL was down"
    assert set(load.failures) <= {"503", "500"}, load.failures
    assert "503" in load.failures


def test_misbehaving_apps_fail_their_runs_and_leave_workers_healthy(chaos: Chaos) -> None:
    bad = BadApp(hang_seconds=CALL_TIMEOUT_SECONDS + 10)
    try:
        bad.register(chaos.stack.base_url)
        answer = requests.post(f"{chaos.stack.base_url}/e/chaos-key",
                               json=[{"name": f"chaos/bad.{b}", "data": {}} for b in BAD_BEHAVIOURS], timeout=30)
        assert answer.status_code == 200, answer.text
        errors = {}
        for behaviour, internal_id in zip(BAD_BEHAVIOURS, answer.json()["ids"]):
            (run,) = chaos.stack.wait_for_runs(internal_id)
            ended = chaos.stack.wait_for_end(run["run_id"], timeout=60)
            assert ended["status"] == "Failed", (behaviour, ended)
            attempts = chaos.stack.attempts(run["run_id"])
            assert len(attempts) == 2 and all(a["status_code"] is None or a["status_code"] == 200 for a in attempts), attempts
            errors[behaviour] = attempts[-1]["error"]
        print("\nchaos[bad apps]: " + "; ".join(f"{b}: {e}" for b, e in errors.items()))
        assert f"timeout: the app did not answer in full within {CALL_TIMEOUT_SECONDS} s" in str(errors["hang"])
        assert "empty reply from server" in str(errors["close"]).lower()  # libcurl's words for a connection closed unanswered
        assert "output_too_large" in str(errors["huge"])
        assert errors["garbage"]
    finally:
        bad.stop()
    # The workers are alive and still do their job.
    assert all(worker.poll() is None for worker in chaos.stack.workers)
    load = SteadyLoad(chaos.stack.base_url, "after-bad-apps", runs=5, seconds=1)
    load.start().join()
    outcome = settle(chaos, load, timeout=60)
    assert (outcome.completed, outcome.lost) == (5, 0), outcome
