"""A property test of hostile apps against the production stack (gunicorn, the timer worker and
beat, a celery call worker, PostgreSQL, Redis, a signing key): whatever an app answers
(tests/hostile_app.py draws the answers), every run reaches a terminal state within its retry
schedule, no worker dies and `POST /e/` never answers 5xx.

Runs go in batches of BATCH, one hypothesis example per batch, so the stack works on several runs
at once as it would in use. HOSTILE_RUNS sets the runs (default 30, the same every time, as CI
runs it); with HOSTILE_RUNS set they are drawn at random:

    HOSTILE_RUNS=500 bash .ci/run -m fuzz -k hostile -s

The stack's limits are small so that a case is quick: one retry, a 2 s call deadline, 8 steps per
run, 4 calls without progress. The test prints its figures: runs, answers tried, runs not terminal,
worker deaths and /e/ 5xx answers.
"""
from __future__ import annotations

import collections
import itertools
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest
import redis
import requests
from hypothesis import HealthCheck, Phase, given, note, settings, strategies as st

from tests.hostile_app import RETRIES, SCRIPTS, TRIGGER, WAKE, HostileApp
from tests.stacks import ProductionStack, query_function, recreate_database, stack_redis_url, wait_for

pytestmark = [pytest.mark.fuzz, pytest.mark.e2e]

RUNS = int(os.environ.get("HOSTILE_RUNS", "30"))
BATCH = 10
SIGNING_KEY = "signkey-prod-" + "d4" * 32
EVENT_KEY = "hostile-event-key-" + "5" * 16
LIMITS = {
    "INNGEST_CALL_TIMEOUT_SECONDS": "2",
    "INNGEST_MAX_STEPS_PER_RUN": "8",
    "INNGEST_MAX_CALLS_WITHOUT_PROGRESS": "4",
}
# The longest a batch may take to end: its runs' calls (at most 8 steps and 4 calls without
# progress, each tried RETRIES + 1 times, each up to the 2 s deadline), sleeps and waits of at
# most 2 s, Retry-After of at most 2 s, on a worker of 4 slots shared by the batch.
SETTLE_SECONDS = 150
# A celery pool process that died (the pool replaces it and says so), or the worker itself.
WORKER_DEATH = re.compile(r"WorkerLostError|exited with 'signal|Process '.*' pid:\d+ exited|Restarting celery worker")
ACTIVE = ("queued", "running")


@dataclass
class Figures:
    runs: int = 0
    answers_drawn: int = 0
    calls_answered: int = 0
    not_terminal: int = 0
    e_5xx: int = 0
    statuses: collections.Counter = field(default_factory=collections.Counter)
    longest_run_seconds: float = 0.0
    most_calls_for_a_run: int = 0
    busiest: str = ""  # the run called most often: its script and what the server recorded of it
    highest_attempt: int = 0  # of any call: attempts are numbered from 0, so at most RETRIES
    errors: collections.Counter = field(default_factory=collections.Counter)  # failed runs' error names
    messages: collections.Counter = field(default_factory=collections.Counter)  # and their messages' starts

    def line(self, worker_deaths: int, seconds: float) -> str:
        return (f"hostile apps: runs={self.runs} answers drawn={self.answers_drawn} answers tried (calls)="
                f"{self.calls_answered} runs not terminal={self.not_terminal} worker deaths={worker_deaths} "
                f"/e/ 5xx={self.e_5xx} outcomes={dict(self.statuses)} longest run={self.longest_run_seconds:.1f}s "
                f"most calls for a run={self.most_calls_for_a_run} highest attempt={self.highest_attempt} in {seconds:.0f}s\n"
                f"hostile apps: failed runs' errors: {dict(self.errors.most_common())}\n"
                f"hostile apps: most common messages: {dict(self.messages.most_common(12))}\n"
                f"hostile apps: busiest {self.busiest[:1500]}")


@pytest.fixture(scope="module")
def hostile_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ProductionStack, HostileApp, Path]]:
    """Closed, as production starts by default; what the stack logs goes to a file the test reads."""
    database_url = recreate_database("inngest_hostile")
    redis_url = stack_redis_url(11)
    redis.Redis.from_url(redis_url).flushdb()
    query, connection = query_function(database_url)
    log_path = tmp_path_factory.mktemp("hostile") / "stack.log"
    with open(log_path, "w") as output:
        stack = ProductionStack(database_url, redis_url, query, insecure=False, output=output, extra_env={
            "INNGEST_SIGNING_KEY": SIGNING_KEY, "INNGEST_EVENT_KEY": EVENT_KEY, **LIMITS})
        stack.event_key, stack.headers = EVENT_KEY, {"Authorization": f"Bearer {SIGNING_KEY}"}
        app = HostileApp()
        try:
            app.register(stack.base_url, stack.headers)
            yield stack, app, log_path
        finally:
            stack.stop()
            app.stop()
            connection.close()
            recreate_database("inngest_hostile", create=False)


def post_event(stack: ProductionStack, figures: Figures, event: dict) -> list[str]:
    answer = requests.post(f"{stack.base_url}/e/{stack.event_key}", json=event, timeout=30)
    figures.e_5xx += answer.status_code >= 500
    assert answer.status_code == 200, answer.text
    return answer.json()["ids"]


def wake_events() -> list[dict]:
    """What the drawn waits wait for, with data their `if` expressions can trip on."""
    return [{"name": WAKE, "data": {"n": 1, "a": 1, "s": "[" * 2000, "list": [[1] * 60] * 60}},
            {"name": WAKE, "data": {"n": "x", "deep": [[[[]]]]}}]


def run_batch(stack: ProductionStack, app: HostileApp, cases: itertools.count, scripts: list, figures: Figures) -> None:
    numbered = {next(cases): script for script in scripts}
    app.scripts.update(numbered)
    event_ids = [post_event(stack, figures, {"name": TRIGGER, "data": {"case": case}})[0] for case in numbered]
    figures.runs += len(numbered)
    figures.answers_drawn += sum(len(script) for script in numbered.values())
    post_event(stack, figures, wake_events())
    started = time.monotonic()

    def settled() -> bool:
        if time.monotonic() - started > 1.5 and not getattr(settled, "woken", False):
            settled.woken = True  # a second wake, for the waits opened after the first
            post_event(stack, figures, wake_events())
        runs = stack.query("SELECT count(*) FROM runs_run r JOIN events_event e ON r.event_id = e.id "
                           "WHERE e.internal_id = ANY(%s)", [event_ids])[0][0]
        active = stack.query("SELECT count(*) FROM runs_run WHERE status = ANY(%s)", [list(ACTIVE)])[0][0]
        return runs == len(event_ids) and active == 0

    try:
        wait_for(settled, timeout=SETTLE_SECONDS, interval=0.3, what="every run of the batch to end")
    except AssertionError:
        stuck = stack.query("SELECT id, status FROM runs_run WHERE status = ANY(%s)", [list(ACTIVE)])
        figures.not_terminal += len(stuck)
        note(f"runs not terminal: {stuck}; cases: {[app.case_of_run.get(run_id) for run_id, _ in stuck]}")
        raise
    finally:
        record_outcomes(stack, app, event_ids, figures)


def record_outcomes(stack: ProductionStack, app: HostileApp, event_ids: list[str], figures: Figures) -> None:
    rows = stack.query("SELECT r.id, r.status, extract(epoch FROM r.ended_at - r.created_at), r.output FROM runs_run r "
                       "JOIN events_event e ON r.event_id = e.id WHERE e.internal_id = ANY(%s)", [event_ids])
    for run_id, status, seconds, output in rows:
        figures.statuses[status] += 1
        if status == "failed":
            name, message = error_of(output)
            figures.errors[name] += 1
            figures.messages[message[:70]] += 1
        figures.longest_run_seconds = max(figures.longest_run_seconds, float(seconds or 0))
        if app.calls[run_id] > figures.most_calls_for_a_run:
            figures.most_calls_for_a_run = app.calls[run_id]
            figures.busiest = describe(stack, app, run_id)
    figures.calls_answered = sum(app.calls.values())
    (highest,) = stack.query("SELECT coalesce(max(a.attempt), 0) FROM runs_stepattempt a JOIN runs_run r ON a.run_id = r.id "
                             "JOIN events_event e ON r.event_id = e.id WHERE e.internal_id = ANY(%s)", [event_ids])[0]
    figures.highest_attempt = max(figures.highest_attempt, highest)


def describe(stack: ProductionStack, app: HostileApp, run_id: str) -> str:
    attempts = stack.query("SELECT step_target, attempt, status_code, opcode FROM runs_stepattempt WHERE run_id = %s "
                           "ORDER BY started_at, id", [run_id])
    script = [(a.status, a.headers, a.body[:300], a.delay, a.delivery) for a in app.scripts[app.case_of_run[run_id]]]
    return f"run {run_id}: script {script}; attempts {attempts[:40]}"


def error_of(output: str | None) -> tuple[str, str]:
    try:
        error = json.loads(output or "null")
        return str(error.get("name")), str(error.get("message"))
    except (ValueError, AttributeError):
        return "?", "?"


def worker_deaths(stack: ProductionStack, log_path: Path) -> int:
    exited = sum(process.poll() is not None for process in [stack.server, *stack.workers])
    return exited + len(WORKER_DEATH.findall(log_path.read_text(errors="replace")))


def test_hostile_apps_never_wedge_a_run_a_worker_or_ingestion(hostile_stack) -> None:
    stack, app, log_path = hostile_stack
    figures, cases, began = Figures(), itertools.count(1), time.monotonic()

    @settings(max_examples=max(RUNS // BATCH, 1), deadline=None, database=None,
              derandomize="HOSTILE_RUNS" not in os.environ,
              # A failing batch is reported as drawn: shrinking would replay batches of minutes.
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(st.lists(SCRIPTS, min_size=BATCH, max_size=BATCH))
    def batch(scripts: list) -> None:
        run_batch(stack, app, cases, scripts, figures)

    try:
        batch()
    finally:
        deaths = worker_deaths(stack, log_path)
        print("\n" + figures.line(deaths, time.monotonic() - began))
    assert figures.runs >= RUNS - RUNS % BATCH and figures.not_terminal == 0 and figures.e_5xx == 0
    assert deaths == 0, log_path.read_text(errors="replace")[-5000:]
    assert requests.get(f"{stack.base_url}/health", timeout=5).status_code == 200
    # The step body runs at most retries + 1 times: no call is tried past its last attempt. (How
    # many calls a run gets is the app's doing within the limits: each new step, up to 8, lets
    # every step it plans make 4 calls without progress; the busiest run is printed with -s.)
    assert figures.highest_attempt <= RETRIES, figures.busiest
