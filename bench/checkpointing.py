"""A JS v4 3-step workflow with and without async checkpointing, beside the Python row and the
floors of bench/peers.py: `.venv/bin/python bench/checkpointing.py [--quick]`.

Rows (p50 / p95 of one workflow at a time, then workflows/s with many at once):

- Python SDK: the 3-step function of bench/sdk_app.py (as `ours` in peers.py);
- JS v4, checkpointing: `three-steps` of tests/js/app.mjs (official `inngest` v4, Express), which
  runs the three steps in one call and reports each to /v1/checkpoint/{runId}/async;
- JS v4, no checkpointing: the same app with `checkpointing: false`, one call per step;
- HTTP floor and celery floor as in peers.py.

Also the calls the server made per JS run (attempts that are not checkpoints), and the
checkpoints per run. See bench/README.md.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.core import Running, bench_stack, finished_run, print_summary, query  # noqa: E402
from bench.peers import (  # noqa: E402
    HTTP_FLOOR, measure_celery_chain, measure_direct, measure_ours, p95, paired_latency, print_table,
)
from bench.process_cost import enable_sql_counting  # noqa: E402
from tests.js_app import JsApp  # noqa: E402
from tests.stacks import wait_for  # noqa: E402

DATABASE = "inngest_bench_checkpointing"


def main() -> None:
    args = parse_args()
    rows: dict[str, dict[str, float]] = {}
    figures: dict[str, str] = {}
    args.sql_dir = enable_sql_counting()  # measure_ours also prints what the Python row costs each process
    with bench_stack(DATABASE, args.workers, args.concurrency, args.app_workers) as running:
        paired = paired_latency(running, args)
        rows["ours"], _ = measure_ours(running, args, paired.ours)
        for label, mode in (("JS v4, checkpointing", ""), ("JS v4, no checkpointing", "plain")):
            app = JsApp("v4", running.base_url, f"bench-js-{mode or 'checkpointing'}", mode)
            try:
                app.sync()
                wait_for(lambda: query(running.db, "SELECT count(*) FROM functions_function f JOIN functions_app a "
                                                   "ON a.id = f.app_id WHERE a.name = %s", [app.app_id])[0][0] >= 12, what="sync")
                rows[label], figures[f"{label}: calls / checkpoints per run"] = measure_js(running, app, args)
            finally:
                app.stop()
        rows[HTTP_FLOOR] = measure_direct(running.app_url, args, paired.floor)
        rows["celery floor (4 chained tasks)"] = measure_celery_chain(args)
    print_table(rows)
    print_summary(f"calls per JS v4 3-step run ({'quick' if args.quick else 'full'}; {args.workers} celery worker(s) x "
                  f"{args.concurrency}; {os.cpu_count()} cores)", figures)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small samples: about two minutes")
    parser.add_argument("--workers", type=int, default=1, help="celery worker processes of our server")
    parser.add_argument("--concurrency", type=int, default=4, help="pool size of each celery worker (and of the floor's)")
    parser.add_argument("--app-workers", type=int, default=2, help="gunicorn processes serving the Python SDK app")
    args = parser.parse_args()
    args.profile = False  # measure_ours can sample the worker; not here
    args.latency_samples = 40 if args.quick else 200
    args.load_runs = 300 if args.quick else 2000
    return args


def measure_js(running: Running, app: JsApp, args: argparse.Namespace) -> tuple[dict[str, float], str]:
    session = requests.Session()
    session.trust_env = False
    event = {"name": app.event("three-steps"), "data": {"start": 1}}
    latencies = []
    for i in range(10 + args.latency_samples):
        sent_at = time.time()
        (internal_id,) = session.post(f"{running.base_url}/e/bench", json=event, timeout=10).json()["ids"]
        _, _, ended_at = wait_for(lambda iid=internal_id: finished_run(running.db, iid), timeout=30, interval=0.002, what="run")
        if i >= 10:  # the first ten warm up the app and the workers
            latencies.append(ended_at - sent_at)
    per_second = run_js_load(running, session, event, args.load_runs)
    row = {"p50": statistics.median(latencies), "p95": p95(latencies), "per_second": per_second}
    return row, calls_per_run(running, app)


def run_js_load(running: Running, session: requests.Session, event: dict, runs: int) -> float:
    """Runs/s of `runs` events sent in batches of 100: runs / (last run's end − first send)."""
    db = running.db
    before = query(db, "SELECT count(*) FROM runs_run WHERE status = 'completed'", [])[0][0]
    started = time.time()
    batches = [[event] * 100 for _ in range(runs // 100)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda batch: session.post(f"{running.base_url}/e/bench", json=batch, timeout=60).raise_for_status(), batches))
    target = before + len(batches) * 100
    wait_for(lambda: query(db, "SELECT count(*) FROM runs_run WHERE status = 'completed'", [])[0][0] >= target,
             timeout=900, interval=0.1, what="all runs to complete")
    not_completed = query(db, "SELECT count(*) FROM runs_run WHERE status <> 'completed'", [])[0][0]
    if not_completed:
        raise SystemExit(f"{not_completed} runs did not complete")
    last_end = float(query(db, "SELECT extract(epoch from max(ended_at)) FROM runs_run", [])[0][0])
    return len(batches) * 100 / (last_end - started)


def calls_per_run(running: Running, app: JsApp) -> str:
    (calls, checkpoints, runs), = query(
        running.db,
        "SELECT count(*) FILTER (WHERE NOT a.is_checkpointed), count(*) FILTER (WHERE a.is_checkpointed), count(DISTINCT r.id) "
        "FROM runs_run r JOIN functions_function f ON f.id = r.function_id JOIN functions_app p ON p.id = f.app_id "
        "JOIN runs_stepattempt a ON a.run_id = r.id WHERE p.name = %s", [app.app_id])
    return f"{calls / runs:.2f} / {checkpoints / runs:.2f} ({runs} runs)"


if __name__ == "__main__":
    main()
