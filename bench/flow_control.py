"""Flow-control benchmark, production mode: `.venv/bin/python bench/flow_control.py [--quick]`.

Prints:
- the overhead a concurrency limit adds per run: the same 3-step function run one at a time
  with no limit, with a limit without a key, and with a keyed limit (limits high enough never
  to make a run wait, so the difference is the slot bookkeeping: two Redis scripts per turn);
- the throughput of a function limited to concurrency 10 whose one step waits 50 ms (an API
  call), next to the same function without a limit, and the most steps the app saw at once.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import redis
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.core import REDIS_URL, bench_stack, finished_run, pair, print_summary, query  # noqa: E402
from tests.stacks import wait_for  # noqa: E402

DATABASE = "inngest_bench_flow"
PEAK_KEY = "bench:peak"  # written by bench/sdk_app.py
COUNT_RUNS = "SELECT count(*) FROM runs_run r JOIN functions_function f ON f.id = r.function_id WHERE f.slug = %s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small samples: about a minute")
    parser.add_argument("--concurrency", type=int, default=16, help="pool size of the celery worker (more than the limit)")
    args = parser.parse_args()
    samples, load = (40, 300) if args.quick else (200, 1000)
    figures: dict[str, str] = {}
    figures |= bench_slot_scripts(10_000 if not args.quick else 2_000)
    with bench_stack(DATABASE, workers=1, concurrency=args.concurrency, app_workers=2) as running:
        base_url, db = running.base_url, running.db
        figures |= bench_overhead(base_url, db, samples)
        figures |= bench_limited_throughput(base_url, db, load)
    print_summary(f"flow-control benchmark ({'quick' if args.quick else 'full'}; 1 celery worker x {args.concurrency}, "
                  f"SDK app on 2 gunicorn processes; {os.cpu_count()} cores)", figures)


def bench_slot_scripts(rounds: int) -> dict[str, str]:
    """The slot bookkeeping alone, against the Redis on this machine: take + give back, one key and two."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inngest_project.settings")
    from runs.flow_control.counters import Counters, Slot

    client = redis.Redis.from_url(REDIS_URL)
    counters = Counters(client)
    figures = {}
    for label, count in (("one limit", 1), ("two limits", 2)):
        slots = [Slot(f"inngest:fc:bench:{i}", 1000, "", 30_000) for i in range(count)]
        started = time.perf_counter()
        for i in range(rounds):
            held = [Slot(s.key, s.limit, str(i), s.ttl_ms) for s in slots]
            now_ms = int(time.time() * 1000)
            counters.acquire(held, str(i), now_ms, now_ms)
            counters.release(held, now_ms)
        figures[f"slot take + give back, {label}, per call (µs)"] = f"{(time.perf_counter() - started) / rounds * 1e6:.0f}"
    client.flushdb()
    return figures


def bench_overhead(base_url: str, db, samples: int) -> dict[str, str]:
    session = requests.Session()
    session.trust_env = False
    durations: dict[str, list[float]] = {}
    variants = {"no limit": "bench/three-steps", "limit, no key": "bench/limited-unkeyed", "limit with key": "bench/limited-keyed"}
    for _ in range(2):  # the first round warms connections and caches up; the second is measured
        for label, name in variants.items():
            durations[label] = [run_once(session, base_url, db, name, i) for i in range(samples)]
    base = sorted(durations["no limit"])[len(durations["no limit"]) // 2]
    figures = {}
    for label, values in durations.items():
        median = sorted(values)[len(values) // 2]
        figures[f"3-step run end to end, {label}: p50 / p95 (ms)"] = pair(values)
        if label != "no limit":
            figures[f"  added per run by the {label.replace('limit', 'concurrency limit')}, p50 (ms)"] = f"{(median - base) * 1000:+.1f}"
    return figures


def run_once(session: requests.Session, base_url: str, db, name: str, i: int) -> float:
    sent_at = time.time()
    (internal_id,) = session.post(f"{base_url}/e/bench", json={"name": name, "data": {"user": f"user-{i % 50}"}},
                                  timeout=10).json()["ids"]
    _, _, ended_at = wait_for(lambda: finished_run(db, internal_id), timeout=30, interval=0.002, what="run")
    return ended_at - sent_at


def bench_limited_throughput(base_url: str, db, runs: int) -> dict[str, str]:
    store = redis.Redis.from_url(REDIS_URL)
    figures = {}
    for fn in ("io-unlimited", "io-limited-10"):
        slug = f"bench-{fn}"
        started = time.time()
        batches = [[{"name": f"bench/{fn}", "data": {}} for _ in range(100)] for _ in range(runs // 100)]
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda batch: requests.post(f"{base_url}/e/bench", json=batch, timeout=60).raise_for_status(), batches))
        wait_for(lambda s=slug: query(db, COUNT_RUNS + " AND r.status = 'completed'", [s])[0][0] >= runs, timeout=900,
                 interval=0.2, what=f"{runs} runs of {slug}")
        last_end = query(db, "SELECT extract(epoch from max(r.ended_at)) FROM runs_run r JOIN functions_function f "
                             "ON f.id = r.function_id WHERE f.slug = %s", [slug])[0][0]
        not_completed = query(db, COUNT_RUNS + " AND r.status <> 'completed'", [slug])[0][0]
        label = "concurrency 10" if fn.endswith("10") else "no limit"
        figures[f"runs/s of a 50 ms step, {label} ({runs} runs)"] = f"{runs / (float(last_end) - started):.1f}"
        figures[f"  most steps in flight at once, {label}"] = (store.get(f"{PEAK_KEY}:{fn}") or b"0").decode()
        figures[f"  runs not completed, {label}"] = str(not_completed)
    return figures


if __name__ == "__main__":
    main()
