"""Core benchmark, production mode on this machine: `.venv/bin/python bench/core.py [--quick]`.

Starts its own stack (gunicorn, the timer worker and beat via `manage.py start --workers 0`,
celery workers, PostgreSQL database `inngest_bench`, Redis db 13) and an SDK app under gunicorn, then prints:
ingestion rate at /e/, event → first SDK call latency, orchestration overhead per step of a
3-step function, and 3-step runs completed per second under load. See bench/README.md.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import psycopg2
import redis
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.sdk_app import free_port  # noqa: E402
from tests.stacks import ProductionStack, recreate_database, stop_process, wait_for, wait_http  # noqa: E402

DATABASE = "inngest_bench"
# A Redis of its own: BENCH_REDIS_URL (BENCH_STACK_REDIS_URL, bench/checkpointing.py's name, too).
REDIS_URL = os.environ.get("BENCH_REDIS_URL") or os.environ.get("BENCH_STACK_REDIS_URL", "redis://127.0.0.1:6379/13")
APP_FUNCTIONS = 7  # the functions bench/sdk_app.py registers


def main() -> None:
    args = parse_args()
    figures: dict[str, str] = {}
    with bench_stack(DATABASE, args.workers, args.concurrency, args.app_workers) as running:
        base_url, db = running.base_url, running.db
        store = redis.Redis.from_url(REDIS_URL)
        figures |= bench_ingest(base_url, db, args)
        figures |= bench_latency(base_url, db, store, args)
        figures |= bench_throughput(base_url, db, args)
    print_summary(f"core benchmark ({'quick' if args.quick else 'full'}; {args.workers} celery worker(s) x "
                  f"{args.concurrency}, SDK app on {args.app_workers} gunicorn processes; {os.cpu_count()} cores)", figures)


@dataclass(frozen=True)
class Running:
    """What bench_stack started: the server's URL, an autocommit connection to its database,
    the SDK app's URL and the stack itself (its worker processes, for memory, profiles and CPU)."""

    base_url: str
    db: Any
    app_url: str
    stack: ProductionStack
    app_pid: int  # gunicorn's master process serving the SDK app
    signing_key: str | None = None  # the stack's and the SDK app's, when started closed


# The signed benches' key (bench_stack's signing_key): the server's and the SDK app's.
SIGNING_KEY = "signkey-prod-" + "5e" * 32


@contextmanager
def bench_stack(database: str, workers: int, concurrency: int, app_workers: int, pool: str | None = None,
                signing_key: str | None = None) -> Iterator[Running]:
    """A fresh database and Redis db, the production stack and the synced SDK app; all removed after.
    With `signing_key` the stack is closed, as production runs: calls and answers are signed
    (the SDK app in production mode checks them), and events need the event key "bench"."""
    os.environ.setdefault("INNGEST_LOG_LEVEL", "WARNING")
    database_url = recreate_database(database)
    redis.Redis.from_url(REDIS_URL).flushdb()
    db = psycopg2.connect(database_url)
    db.autocommit = True
    keys = {"INNGEST_SIGNING_KEY": signing_key, "INNGEST_EVENT_KEY": "bench"} if signing_key else None
    stack = ProductionStack(database_url, REDIS_URL, lambda sql, params: query(db, sql, params),
                            worker_concurrency=concurrency, workers=workers, worker_pool=pool,
                            insecure=signing_key is None, extra_env=keys)
    app_process = None
    try:
        app_process, app_url = start_sdk_app(stack.base_url, app_workers, signing_key)
        requests.put(app_url, timeout=30).raise_for_status()
        wait_for(lambda: query(db, "SELECT count(*) FROM functions_function", [])[0][0] >= APP_FUNCTIONS, what="sync")
        yield Running(stack.base_url, db, app_url, stack, app_process.pid, signing_key)
    finally:
        if app_process is not None:
            stop_process(app_process)
        stack.stop()
        db.close()
        recreate_database(database, create=False)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small samples: about a minute")
    parser.add_argument("--workers", type=int, default=1, help="celery worker processes")
    parser.add_argument("--concurrency", type=int, default=8, help="pool size of each celery worker (start's default)")
    parser.add_argument("--app-workers", type=int, default=2, help="gunicorn processes serving the SDK app")
    args = parser.parse_args()
    args.ingest_seconds = 3 if args.quick else 10
    args.latency_samples = 40 if args.quick else 200
    args.load_runs = 300 if args.quick else 2000
    return args


def query(db: psycopg2.extensions.connection, sql: str, params: list) -> list[tuple]:
    with db.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def start_sdk_app(server_url: str, workers: int, signing_key: str | None = None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "BENCH_SERVER_URL": server_url, "BENCH_REDIS_URL": REDIS_URL, "PYTHONPATH": str(ROOT),
           "BENCH_SIGNING_KEY": signing_key or ""}
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "bench.sdk_app:app", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
         "--worker-class", "gthread", "--threads", "8", "--log-level", "warning"],
        env=env, cwd=ROOT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/api/inngest"
    wait_http(url, any_answer=bool(signing_key))  # in production mode an unsigned GET gets a 401
    return process, url


# --- 1. ingestion ------------------------------------------------------------------------------

def bench_ingest(base_url: str, db: psycopg2.extensions.connection, args: argparse.Namespace) -> dict[str, str]:
    figures = {}
    for per_request in (1, 100):
        before = query(db, "SELECT count(*) FROM events_event", [])[0][0]
        accepted, elapsed = hammer(base_url, per_request, args.ingest_seconds, clients=16)
        stored = query(db, "SELECT count(*) FROM events_event", [])[0][0] - before
        label = f"/e/ events/s, {per_request} per request"
        figures[label] = f"{accepted / elapsed:,.0f}"
        figures[f"{label}: acknowledged = stored"] = f"{accepted:,} = {stored:,} ({'ok' if accepted == stored else 'MISMATCH'})"
    return figures


def hammer(base_url: str, per_request: int, seconds: float, clients: int, name: str = "bench/unmatched") -> tuple[int, float]:
    body = [{"name": name, "data": {"i": i, "pad": "x" * 64}} for i in range(per_request)]
    deadline = time.monotonic() + seconds
    counts = [0] * clients

    def client(index: int) -> None:
        session = requests.Session()
        session.trust_env = False
        while time.monotonic() < deadline:
            answer = session.post(f"{base_url}/e/bench", json=body if per_request > 1 else body[0], timeout=30)
            if answer.status_code == 200:
                counts[index] += len(answer.json()["ids"])

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts), time.monotonic() - started


# --- 2 and 3. latency and overhead, unloaded ---------------------------------------------------

# How often a sample looks for its run's end. The figures come from the run's own ended_at, so
# this only bounds how long a sample waits; each look is a query to the server's PostgreSQL,
# and looking every 2 ms took a fifth of a core from the server while it ran (0.4 ms of
# PostgreSQL per look on a 2-core machine), which no other row of peers.py pays.
POLL_SECONDS = 0.02


@dataclass(frozen=True)
class LatencySample:
    first_call: float  # event sent → the SDK's first call began (seconds)
    end_to_end: float  # event sent → the run's ended_at
    overhead_per_call: float  # (end_to_end − the app's own time) / 4: 3 steps and the final call


def latency_sample(session: requests.Session, base_url: str, db, store: redis.Redis) -> LatencySample:
    """One run of bench-three-steps, alone."""
    sent_at = time.time()
    (internal_id,) = session.post(f"{base_url}/e/bench", json={"name": "bench/three-steps", "data": {"sent_at": sent_at, "timed": True}},
                                  timeout=10).json()["ids"]
    run_id, output, ended_at = wait_for(lambda: finished_run(db, internal_id), timeout=30, interval=POLL_SECONDS, what="run")
    app_seconds = float(store.hget("bench:app-seconds", run_id) or 0)
    total = ended_at - sent_at
    return LatencySample(output["first_call_at"] - sent_at, total, (total - app_seconds) / 4)


def latency_lists(samples: list[LatencySample]) -> dict[str, list[float]]:
    """Each figure of the samples, in seconds, by name."""
    return {"first_call": [s.first_call for s in samples], "end_to_end": [s.end_to_end for s in samples],
            "overhead_per_call": [s.overhead_per_call for s in samples]}


def plain_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    return session


def bench_latency(base_url: str, db, store: redis.Redis, args: argparse.Namespace, raw: bool = False) -> dict[str, Any]:
    """One run at a time. With `raw`, the samples in seconds instead of printed figures."""
    session = plain_session()
    latency = latency_lists([latency_sample(session, base_url, db, store) for _ in range(args.latency_samples)])
    if raw:
        return latency
    first_call, end_to_end, overhead_per_call = latency["first_call"], latency["end_to_end"], latency["overhead_per_call"]
    return {
        "event → first SDK call p50 / p95 (ms)": pair(first_call),
        "3-step run end to end p50 / p95 (ms)": pair(end_to_end),
        "overhead per SDK call p50 / p95 (ms)": pair(overhead_per_call),
        "overhead per step (run − app time) / 3, p50 / p95 (ms)": pair([o * 4 / 3 for o in overhead_per_call]),
    }


def finished_run(db, internal_id: str) -> tuple | None:
    rows = query(db, "SELECT r.id, r.output::jsonb, extract(epoch from r.ended_at) FROM runs_run r JOIN events_event e "
                     "ON e.id = r.event_id WHERE e.internal_id = %s AND r.status = 'completed'", [internal_id])
    return (rows[0][0], rows[0][1], float(rows[0][2])) if rows else None


def pair(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"{statistics.median(ordered) * 1000:.1f} / {p95 * 1000:.1f}"


# --- 4. throughput under load ------------------------------------------------------------------

def bench_throughput(base_url: str, db, args: argparse.Namespace) -> dict[str, str]:
    before = query(db, "SELECT count(*) FROM runs_run WHERE status = 'completed'", [])[0][0]
    started = time.time()
    batches = [[{"name": "bench/three-steps", "data": {"sent_at": time.time()}} for _ in range(100)]
               for _ in range(args.load_runs // 100)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda batch: requests.post(f"{base_url}/e/bench", json=batch, timeout=60).raise_for_status(), batches))
    target = before + len(batches) * 100
    wait_for(lambda: query(db, "SELECT count(*) FROM runs_run WHERE status = 'completed'", [])[0][0] >= target,
             timeout=600, interval=0.1, what="all runs to complete")
    last_end = query(db, "SELECT extract(epoch from max(ended_at)) FROM runs_run", [])[0][0]
    elapsed = float(last_end) - started
    failed = query(db, "SELECT count(*) FROM runs_run WHERE status <> 'completed'", [])[0][0]
    return {f"3-step runs/s under load ({len(batches) * 100} runs)": f"{len(batches) * 100 / elapsed:.1f}",
            "runs not completed": str(failed)}


def print_summary(title: str, figures: dict[str, str]) -> None:
    print(f"\n{title}")
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"  {key:<{width}}  {value}")


if __name__ == "__main__":
    main()
