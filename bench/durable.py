"""Durable steps benchmark, production mode: `.venv/bin/python bench/durable.py [--quick]`.

Prints the wake-up lateness of sleeps (p50/p95) and the `/e/` ingestion rate with no open
waits and with 10,000 open waits (events of another name, and events of the waits' own name
that match none of them). Same stack as bench/core.py; see bench/README.md.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.core import bench_stack, hammer, print_summary, query  # noqa: E402
from tests.stacks import wait_for  # noqa: E402

DATABASE = "inngest_bench_durable"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--waits", type=int, default=10_000)
    args = parser.parse_args()
    figures: dict[str, str] = {}
    with bench_stack(DATABASE, workers=1, concurrency=4, app_workers=2) as running:
        base_url, db = running.base_url, running.db
        figures |= bench_sleep_lateness(base_url, db, 20 if args.quick else 100)
        figures |= bench_ingest_with_waits(base_url, db, args.waits, 3 if args.quick else 10)
    print_summary("durable steps benchmark", figures)


def bench_sleep_lateness(base_url: str, db, runs: int) -> dict[str, str]:
    """Runs sleeping 2 s, sent over a few seconds; lateness = woke − (planned wake time)."""
    session = requests.Session()
    for _ in range(runs):
        session.post(f"{base_url}/e/bench", json={"name": "bench/sleeper", "data": {"seconds": 2}}, timeout=10)
        time.sleep(3.0 / runs)
    done = lambda: query(db, "SELECT output::jsonb FROM runs_run r JOIN functions_function f ON f.id = r.function_id "  # noqa: E731
                             "WHERE f.slug = 'bench-bench-sleeper' AND r.status = 'completed'", [])
    rows = wait_for(lambda: (r := done()) and len(r) >= runs and r, timeout=120, interval=0.2, what="sleepers")
    lateness = sorted(row[0]["woke_at"] - row[0]["wake_at"] for row in rows)
    p95 = lateness[min(len(lateness) - 1, int(len(lateness) * 0.95))]
    return {f"sleep wake-up lateness p50 / p95 (ms, {runs} sleeps of 2 s)":
            f"{statistics.median(lateness) * 1000:.0f} / {p95 * 1000:.0f}"}


def bench_ingest_with_waits(base_url: str, db, waits: int, seconds: float) -> dict[str, str]:
    figures = {}
    accepted, elapsed = hammer(base_url, 100, seconds, clients=16)
    figures["/e/ events/s, 100 per request, no open waits"] = f"{accepted / elapsed:,.0f}"
    batches = [[{"name": "bench/waiter", "data": {"k": f"key-{i * 100 + j}"}} for j in range(100)] for i in range(waits // 100)]
    for batch in batches:
        requests.post(f"{base_url}/e/bench", json=batch, timeout=60).raise_for_status()
    wait_for(lambda: query(db, "SELECT count(*) FROM runs_wait WHERE kind = 'event'", [])[0][0] >= waits,
             timeout=600, interval=0.5, what=f"{waits} open waits")
    accepted, elapsed = hammer(base_url, 100, seconds, clients=16)
    figures[f"/e/ events/s, 100 per request, {waits:,} open waits (other names)"] = f"{accepted / elapsed:,.0f}"
    accepted, elapsed = hammer(base_url, 100, seconds, clients=16, name="bench/approve")
    figures[f"/e/ events/s, 100 per request, {waits:,} open waits (their name, no match)"] = f"{accepted / elapsed:,.0f}"
    return figures


if __name__ == "__main__":
    main()
