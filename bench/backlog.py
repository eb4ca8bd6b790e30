"""Messages sent under a backlog: `.venv/bin/python bench/backlog.py [--runs 3000]`.

Queues `--runs` three-step runs at once against one call worker, with INNGEST_LOST_MESSAGE_SECONDS
at 3 so that the backlog outlasts it, and prints the broker messages sent per run (Redis LPUSHes:
the call messages, plus beat's ticks) and bench/process_cost.py's costs per run. A call whose
message is re-sent while the first is still waiting costs a message and a failed claim; without
re-sends a three-step run takes one message (the worker keeps the run while its next call is due
at once).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.core import REDIS_URL, bench_stack, print_summary, query  # noqa: E402
from bench.process_cost import stack_meter  # noqa: E402
from tests.stacks import wait_for  # noqa: E402

DATABASE = "inngest_bench_backlog"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3000, help="runs queued at once, in batches of 100")
    parser.add_argument("--lost-message-seconds", default="3", help="INNGEST_LOST_MESSAGE_SECONDS of the stack")
    args = parser.parse_args()
    os.environ["INNGEST_LOST_MESSAGE_SECONDS"] = args.lost_message_seconds
    with bench_stack(DATABASE, workers=1, concurrency=8, app_workers=2) as running:
        meter = stack_meter(running, None, REDIS_URL)
        idle = meter.idle()
        before, runs = meter.snapshot(), args.runs // 100 * 100
        for _ in range(runs // 100):
            batch = [{"name": "bench/three-steps", "data": {}}] * 100
            requests.post(f"{running.base_url}/e/bench", json=batch, timeout=60).raise_for_status()
        wait_for(lambda: query(running.db, "SELECT count(*) FROM runs_run WHERE status = 'completed'", [])[0][0] >= runs,
                 timeout=1800, interval=0.5, what="all runs to complete")
        elapsed = float(query(running.db, "SELECT extract(epoch from max(ended_at) - min(created_at)) FROM runs_run", [])[0][0])
        after = meter.snapshot()
    pushes = after.redis_calls.get("lpush", 0) - before.redis_calls.get("lpush", 0)
    print_summary(f"backlog of {runs:,} runs, INNGEST_LOST_MESSAGE_SECONDS={args.lost_message_seconds}, 1 call worker x 8", {
        "broker messages per run (LPUSH)": f"{pushes / runs:.2f}",
        "runs/s (first run created → last ended)": f"{runs / elapsed:.0f}",
    } | meter.figures(before, after, runs, idle))


if __name__ == "__main__":
    main()
