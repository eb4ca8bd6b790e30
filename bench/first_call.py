"""Where event → first SDK call goes: `.venv/bin/python bench/first_call.py [--samples 150] [--signed]`.

The stack of `core.py` (one call worker of 8 threads, the SDK app on 2 gunicorn processes), then
one `bench-three-steps` run at a time, each after a 20 ms pause, split by the clocks of the
processes involved (one machine, one clock):

- sent → run created: the client's send to the server stamping the run (`runs_run.created_at`,
  set in the server's process before its rows are written);
- created → claimed: the event's and run's commit, the broker hop and Celery's dispatch, up to
  the worker stamping the run started (`started_at`, set in the worker before its claim is sent);
- claimed → the app's first step: the claim's round trip, the call's body and the HTTP call, and
  the SDK app until its first step runs (the step returns the time: bench/sdk_app.py);
- the first step → the run's end: the other three calls and their records;
- and, beside them, when the client had the server's answer to its POST.

`peers.py` divides (ours − the HTTP floor) by 3 for "overhead per step": that figure carries the
whole of event → first call, spread over the three steps.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.core import SIGNING_KEY, bench_stack, plain_session, query  # noqa: E402
from tests.stacks import wait_for  # noqa: E402

DATABASE = "inngest_bench_first_call"
WARM_UP = 20
PAUSE_SECONDS = 0.02
PARTS = ("POST answered", "sent → run created", "created → claimed", "claimed → the app's first step",
         "the first step → the run's end")


def main() -> None:
    args = parse_args()
    with bench_stack(DATABASE, 1, 8, 2, signing_key=SIGNING_KEY if args.signed else None) as running:
        session = plain_session()
        samples = []
        for index in range(WARM_UP + args.samples):
            time.sleep(PAUSE_SECONDS)
            sample = one_run(session, running.base_url, running.db)
            if index >= WARM_UP:
                samples.append(sample)
    print(f"\nevent → first SDK call, split ({args.samples} runs one at a time, after {WARM_UP}; "
          f"{'signed' if args.signed else 'unsigned'}; p50 / p95 ms)")
    for name, values in zip(PARTS, zip(*samples)):
        ordered = sorted(values)
        print(f"  {name:34s} {statistics.median(ordered) * 1000:7.2f} / {ordered[int(len(ordered) * 0.95)] * 1000:7.2f}")


def one_run(session, base_url: str, db) -> tuple[float, ...]:
    sent = time.time()
    answer = session.post(f"{base_url}/e/bench", json={"name": "bench/three-steps", "data": {"sent_at": sent}}, timeout=10)
    answered = time.time()
    (internal_id,) = answer.json()["ids"]
    created, started, first_step, ended = wait_for(lambda: stamps(db, internal_id), timeout=30, interval=0.01, what="the run's end")
    return answered - sent, created - sent, started - created, first_step - started, ended - first_step


def stamps(db, internal_id: str) -> tuple[float, float, float, float] | None:
    rows = query(db, "SELECT extract(epoch from r.created_at), extract(epoch from r.started_at), "
                     "(r.output::jsonb ->> 'first_call_at')::float8, extract(epoch from r.ended_at) "
                     "FROM runs_run r JOIN events_event e ON e.id = r.event_id WHERE e.internal_id = %s AND r.status = 'completed'",
                 [internal_id])
    return tuple(float(value) for value in rows[0]) if rows else None


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=150, help="runs measured, one at a time")
    parser.add_argument("--signed", action="store_true", help="the stack closed with a signing key, as production runs")
    return parser.parse_args()


if __name__ == "__main__":
    main()
