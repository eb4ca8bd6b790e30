"""Workflows/s with 1, 2 and 4 celery worker processes: `.venv/bin/python bench/scale.py [--quick]`.

The stack of bench/peers.py (same database name, so not at the same time as it), started once per
worker count and pool size (`--concurrency 8,16` compares pool sizes); for each: the 3-step
workflows/s of the load of bench/peers.py and what one workflow costs each process
(bench/process_cost.py). On one machine the workers share its cores with everything else, so the
figure shows where adding workers stops paying, not what more machines would give. `--rounds N`
measures every setting N times, in reverse order every other round, so that the machine's drift
falls on each setting alike.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.core import REDIS_URL, bench_stack, print_summary  # noqa: E402
from bench.peers import DATABASE, run_load  # noqa: E402
from bench.process_cost import enable_sql_counting, stack_meter  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="300 workflows per worker count instead of 2,000")
    parser.add_argument("--counts", default="1,2,4", help="worker process counts to measure")
    parser.add_argument("--concurrency", default="8", help="pool sizes of each celery worker, comma-separated (start's default: 8)")
    parser.add_argument("--rounds", type=int, default=1, help="times each setting is measured, alternating the order")
    parser.add_argument("--app-workers", type=int, default=2, help="gunicorn processes serving the SDK app")
    parser.add_argument("--pool", default="threads", choices=["prefork", "threads"],
                        help="celery pool of the call workers (threads: the server's default)")
    args = parser.parse_args()
    runs = 300 if args.quick else 2000
    sql_dir = enable_sql_counting()
    figures: dict[str, str] = {}
    settings = [(int(workers), int(pool_size)) for workers in args.counts.split(",") for pool_size in args.concurrency.split(",")]
    for round_ in range(args.rounds):
        for workers, pool_size in settings if round_ % 2 == 0 else settings[::-1]:
            with bench_stack(DATABASE, workers, pool_size, args.app_workers, args.pool) as running:
                run_load(running, 100)  # warm: connections open, code paths loaded
                meter = stack_meter(running, sql_dir, REDIS_URL)
                idle = meter.idle()
                before = meter.snapshot()
                per_second = run_load(running, runs)
                time.sleep(0.5)
                costs = meter.figures(before, meter.snapshot(), runs, idle)
            setting = f"{workers} worker(s) x {pool_size} ({args.pool})" + (f", round {round_ + 1}" if args.rounds > 1 else "")
            figures[f"{setting}: 3-step workflows/s"] = f"{per_second:.1f}"
            for name in ("celery call workers (main + pool)", "SDK app (gunicorn)", "all of the above"):
                figures[f"{setting}: CPU ms per workflow, {name}"] = costs[f"CPU ms per workflow: {name}"]
    print_summary(f"scale ({'quick' if args.quick else 'full'}; {os.cpu_count()} cores)", figures)


if __name__ == "__main__":
    main()
