"""What one call to an app costs the calling process: the server's `call_function` (the request
body, the HTTP client, reading the answer) against a trivial app on this machine.

    .venv/bin/python bench/call_client.py [--calls 3000] [--rounds 3] [--signed]

The app (bench/plain_app.py: reads the body, answers 206 with one StepRun op at once) is served
by gunicorn (2 processes, gthread, 4 threads) in other processes, so the CPU time of this process
(time.process_time) is the client's alone. One thread calls it `--calls` times in a row over a
kept-alive connection, after 200 calls to warm up; prints CPU and wall ms per call for each round
and their medians. `--signed` signs each call (JCS body and HMAC), as production does.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inngest_project.settings")

import django  # noqa: E402

django.setup()

from django.test import override_settings  # noqa: E402

from bench.core import SIGNING_KEY  # noqa: E402
from executor.transport import CallRequest, call_function  # noqa: E402
from tests.sdk_app import free_port  # noqa: E402
from tests.stacks import stop_process, wait_http  # noqa: E402


def measure(call: Callable[[], None], calls: int) -> tuple[float, float]:
    """CPU and wall ms per call."""
    for _ in range(200):
        call()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(calls):
        call()
    return 1e3 * (time.process_time() - cpu) / calls, 1e3 * (time.perf_counter() - wall) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--signed", action="store_true")
    args = parser.parse_args()
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "bench.plain_app:app", "--bind", f"127.0.0.1:{port}",
                               "--workers", "2", "--worker-class", "gthread", "--threads", "4", "--log-level", "warning"],
                              cwd=ROOT, start_new_session=True)
    request = CallRequest(
        url=f"http://127.0.0.1:{port}/api/inngest?fnId=bench-fn", run_id="01JBENCHRUN0000000000000000", fn_id="bench-fn",
        step_target="step", attempt=0, max_attempts=4, event={"name": "bench/e", "data": {"a": 1}},
        events=[{"name": "bench/e", "data": {"a": 1}}], steps={"s1": {"data": 1}}, stack=["s1"], request_version=1,
        disable_immediate_execution=False, request_id="01JBENCHREQ000000000000000", job_id="01JBENCHRUN-step-1")

    def call() -> None:
        answer = call_function(request)
        assert answer.status == 206 and answer.has_sdk_header, answer

    try:
        wait_http(f"http://127.0.0.1:{port}/health")
        with override_settings(INNGEST_SIGNING_KEY=SIGNING_KEY if args.signed else ""):
            rounds = [measure(call, args.calls) for _ in range(args.rounds)]
    finally:
        stop_process(server)
    for n, (cpu, wall) in enumerate(rounds, 1):
        print(f"round {n}: call_function client CPU {cpu:.3f} ms/call, wall {wall:.3f} ms/call")
    print(f"median: call_function client CPU {statistics.median(r[0] for r in rounds):.3f} ms/call, "
          f"wall {statistics.median(r[1] for r in rounds):.3f} ms/call "
          f"({args.calls} calls a round, {'signed' if args.signed else 'unsigned'})")


if __name__ == "__main__":
    main()
