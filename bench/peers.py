"""Our server beside its floors and a peer, in one run: `.venv/bin/python bench/peers.py [--quick]`.

On the same machine, one after the other while the others sit idle, each measured the same way
(p50 / p95 of one workflow at a time, then workflows/s with many at once):

- ours: the 3-step function of bench/sdk_app.py, event sent → run ended in the database;
- celery floor: a chain of 4 no-op Celery tasks through the same Redis (bench/celery_floor.py);
- HTTP floor: the same SDK app called directly 4 times, no server between;
- durable floor: those 4 calls with the round trips of a server that records each step in
  PostgreSQL and hands runs to workers through a queue, and nothing else (bench/durable_floor.py);
- DBOS: the same 3-step workflow in DBOS Transact on the same PostgreSQL (bench/dbos_flow.py).

Then the server's own targets: event → first SDK call, orchestration overhead per step, /e/
ingestion, and a worker's resident memory over many steps. See bench/README.md.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
import rfc8785
import urllib3

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import celery_floor  # noqa: E402
from bench.durable_floor import DurableFloor, stored_event  # noqa: E402
from bench.process_cost import enable_sql_counting, stack_meter  # noqa: E402
from bench.core import (  # noqa: E402
    SIGNING_KEY, REDIS_URL, LatencySample, Running, bench_ingest, bench_stack, latency_lists, latency_sample, pair, plain_session, print_summary, query,
)
from executor import signing  # noqa: E402
from tests.stacks import recreate_database, stop_process, wait_for  # noqa: E402

DATABASE = "inngest_bench_peers"
DBOS_DATABASE = "dbos_bench"
FUNCTION_ID = "bench-bench-three-steps"
PAUSE_SECONDS = 0.02  # before each one-at-a-time sample (paired_latency)
HTTP_FLOOR = "HTTP floor (4 direct calls)"
DURABLE_FLOOR = "durable floor (+ 6 commits, 1 queue hop)"


def main() -> None:
    args = parse_args()
    rows: dict[str, dict[str, float]] = {}
    figures: dict[str, str] = {}
    args.sql_dir = enable_sql_counting()
    signing_key = SIGNING_KEY if args.signed else None
    with bench_stack(DATABASE, args.workers, args.concurrency, args.app_workers, args.pool, signing_key) as running:
        pool = urllib3.PoolManager(maxsize=32)
        durable = DurableFloor(running.stack.env["DATABASE_URL"], REDIS_URL,
                               lambda run_id, event: sdk_answers(pool, running.app_url, run_id, event, signing_key), args.concurrency)
        try:
            paired = paired_latency(running, args, durable)
            rows["ours"], ours_figures = measure_ours(running, args, paired.ours)
            rows[HTTP_FLOOR] = measure_direct(running.app_url, args, paired.floor, signing_key)
            rows[DURABLE_FLOOR] = measure_durable(durable, args, paired.durable)
        finally:
            durable.stop()
        rows["celery floor (4 chained tasks)"] = measure_celery_chain(args)
        rows["DBOS Transact"], dbos_cpu = measure_dbos(args)
        figures |= ours_figures
        figures |= derived_figures(rows)
        figures |= cpu_beside_dbos(ours_figures, dbos_cpu)
        figures |= bench_ingest(running.base_url, running.db, args)
        figures |= measure_ingest_wrk(running, args)
        if args.memory_steps:
            figures |= measure_worker_memory(running, args)
    print_table(rows)
    print_summary(f"targets ({'quick' if args.quick else 'full'}{', signed' if args.signed else ''}; "
                  f"{args.workers} celery worker(s) x {args.concurrency} ({args.pool}), "
                  f"SDK app on {args.app_workers} gunicorn processes; {os.cpu_count()} cores)", figures)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small samples: about two minutes")
    parser.add_argument("--workers", type=int, default=1, help="celery worker processes of our server")
    parser.add_argument("--concurrency", type=int, default=8,
                        help="pool size of each celery worker, start's default (and of the floor's)")
    parser.add_argument("--app-workers", type=int, default=2, help="gunicorn processes serving the SDK app")
    parser.add_argument("--pool", default="threads", choices=["prefork", "threads"],
                        help="celery pool of the call workers (threads: the server's default)")
    parser.add_argument("--memory-steps", type=int, default=None, help="steps for the worker memory figure (0: skip)")
    parser.add_argument("--signed", action="store_true",
                        help="the stack closed with a signing key and the SDK app in production mode, as production runs: "
                             "every call signed, its body JCS-canonical, and checked by the app (the floors' calls too)")
    parser.add_argument("--profile", action="store_true",
                        help="sample the first worker with py-spy during the load and print where its time goes")
    args = parser.parse_args()
    args.ingest_seconds = 3 if args.quick else 10
    args.latency_samples = 40 if args.quick else 200
    args.load_runs = 300 if args.quick else 2000
    if args.memory_steps is None:
        args.memory_steps = 6_000 if args.quick else 100_000
    return args


# --- ours --------------------------------------------------------------------------------------

@dataclass
class PairedSamples:
    ours: list[LatencySample]
    floor: list[float]  # the HTTP floor's workflows, seconds
    durable: list[float]  # the durable floor's (none when it was not measured)


def paired_latency(running: Running, args: argparse.Namespace, durable: DurableFloor | None = None) -> PairedSamples:
    """One workflow at a time, ours, the HTTP floor's and the durable floor's in turn, so that all
    see the same machine: its speed drifts by a quarter within minutes, and measured one after
    the other they would not. Each sample starts after a pause in which what the previous one
    left behind (a run's last record and its function.finished event, after its ended_at) is done."""
    store = redis.Redis.from_url(REDIS_URL)
    session, pool = plain_session(), urllib3.PoolManager(maxsize=32)
    for i in range(10):  # warm up
        latency_sample(session, running.base_url, running.db, store)
        direct_workflow(pool, running.app_url, f"warm-{i}", running.signing_key)
        if durable is not None:
            durable.workflow(f"warm-durable-{i}")
    paired = PairedSamples([], [], [])
    for i in range(args.latency_samples):
        time.sleep(PAUSE_SECONDS)
        paired.ours.append(latency_sample(session, running.base_url, running.db, store))
        time.sleep(PAUSE_SECONDS)
        started = time.perf_counter()
        direct_workflow(pool, running.app_url, run_id_for("one", i), running.signing_key)
        paired.floor.append(time.perf_counter() - started)
        if durable is not None:
            time.sleep(PAUSE_SECONDS)
            paired.durable.append(durable.workflow(run_id_for("durable", i)))
    return paired


def measure_ours(running: Running, args: argparse.Namespace, samples: list[LatencySample]) -> tuple[dict[str, float], dict[str, str]]:
    latency = latency_lists(samples)
    meter = stack_meter(running, args.sql_dir, REDIS_URL)
    idle = meter.idle()
    before = meter.snapshot()
    with profiled(running.stack.workers[0].pid, enabled=args.profile):
        per_second = run_load(running, args.load_runs)
    time.sleep(0.5)  # the last run's end is committed; its events' trigger look-ups too
    costs = meter.figures(before, meter.snapshot(), args.load_runs, idle)
    row = {"p50": statistics.median(latency["end_to_end"]), "p95": p95(latency["end_to_end"]), "per_second": per_second}
    figures = {
        "event → first SDK call p50 / p95 (ms)": pair(latency["first_call"]),
        "overhead per step, (run − app time) / 3, p50 / p95 (ms)": pair([o * 4 / 3 for o in latency["overhead_per_call"]]),
    }
    return row, figures | costs


def run_load(running: Running, runs: int) -> float:
    """Runs/s of `runs` events sent in batches of 100: runs / (last run's end − first send)."""
    import requests

    db = running.db
    before = query(db, "SELECT count(*) FROM runs_run WHERE status = 'completed'", [])[0][0]
    started = time.time()
    batches = [[{"name": "bench/three-steps", "data": {"sent_at": started}} for _ in range(100)] for _ in range(runs // 100)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda batch: requests.post(f"{running.base_url}/e/bench", json=batch, timeout=60).raise_for_status(), batches))
    target = before + len(batches) * 100
    wait_for(lambda: query(db, "SELECT count(*) FROM runs_run WHERE status = 'completed'", [])[0][0] >= target,
             timeout=900, interval=0.1, what="all runs to complete")
    last_end = float(query(db, "SELECT extract(epoch from max(ended_at)) FROM runs_run", [])[0][0])
    not_completed = query(db, "SELECT count(*) FROM runs_run WHERE status <> 'completed'", [])[0][0]
    if not_completed:
        raise SystemExit(f"{not_completed} runs did not complete")
    return len(batches) * 100 / (last_end - started)


@contextlib.contextmanager
def profiled(pid: int, enabled: bool) -> Iterator[None]:
    """py-spy samples the worker (main process and pool) while the block runs; then print the
    share of samples spent in each of the server's own functions (inclusive), largest first."""
    if not enabled:
        yield
        return
    with tempfile.TemporaryDirectory() as directory:
        output = Path(directory) / "worker.txt"
        sampler = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid), "--subprocesses",
                                    "--rate", "200", "--format", "raw", "--output", str(output), "--nonblocking"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            yield
        finally:
            sampler.send_signal(signal.SIGINT)  # py-spy writes its samples when interrupted
            sampler.wait(timeout=60)
        print_profile(output.read_text())


def print_profile(collapsed: str, top: int = 25) -> None:
    apps = ("(executor/", "(runs/", "(events/", "(functions/", "(core/", "(inngest_project/")  # py-spy names files relative to the working directory
    total, inclusive = 0, Counter()
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        total += int(count)
        ours = {frame.rpartition(":")[0] for frame in stack.split(";") if any(app in frame for app in apps)}
        for frame in ours:  # "function (path/file.py" once per sample, however deep the recursion
            inclusive[frame] += int(count)
    print(f"\nworker profile during the load (py-spy, {total:,} samples; inclusive share of the server's own functions)")
    for frame, count in inclusive.most_common(top):
        name, _, path = frame.partition(" (")
        print(f"  {count / max(total, 1) * 100:5.1f}%  {name}  {path}")


# --- the HTTP floor ----------------------------------------------------------------------------

def direct_workflow(pool: urllib3.PoolManager, app_url: str, run_id: str, signing_key: str | None = None) -> None:
    """The calls the server makes for one run of the 3-step function, made directly."""
    for _ in sdk_answers(pool, app_url, run_id, signing_key=signing_key):
        pass


def sdk_answers(pool: urllib3.PoolManager, app_url: str, run_id: str, event: dict | None = None,
                signing_key: str | None = None) -> Iterator[tuple[int, Any]]:
    """Each call of one run of the 3-step function, made directly: (206, its ops) for a step, then
    (200, the function's output as the app sent it). The next call is made when the caller asks
    for the next answer, after it has done what it does with this one. With `signing_key` each
    body is JCS-canonical and signed, as the server sends it to an app in production mode."""
    if event is None:
        event = stored_event(run_id, time.time())
    steps: dict[str, object] = {}
    stack: list[str] = []
    url = f"{app_url}?fnId={FUNCTION_ID}&stepId=step"
    for _ in range(10):
        body = {"event": event, "events": [event], "steps": steps, "use_api": False, "version": 2,
                "ctx": {"fn_id": FUNCTION_ID, "run_id": run_id, "env": "", "step_id": "step", "attempt": 0, "max_attempts": 4,
                        "stack": {"stack": stack, "current": len(stack)}, "disable_immediate_execution": False, "use_api": False}}
        headers = {"Content-Type": "application/json"}
        if signing_key:
            payload = rfc8785.dumps(body)
            headers["X-Inngest-Signature"] = signing.signature(payload, signing_key)
        else:
            payload = json.dumps(body).encode()
        answer = pool.request("POST", url, body=payload, headers=headers)
        if answer.status == 200:
            yield 200, answer.data
            return
        if answer.status != 206:
            raise RuntimeError(f"direct call answered {answer.status}: {answer.data[:200]!r}")
        ops = json.loads(answer.data)
        yield 206, ops
        for op in ops:
            steps[op["id"]] = {"data": op["data"]}
            stack.append(op["id"])
    raise RuntimeError("the function did not end after 10 calls")


def measure_direct(app_url: str, args: argparse.Namespace, latencies: list[float], signing_key: str | None = None) -> dict[str, float]:
    pool = urllib3.PoolManager(maxsize=32)
    started = time.perf_counter()
    with ThreadPoolExecutor(16) as threads:
        list(threads.map(lambda i: direct_workflow(pool, app_url, run_id_for("load", i), signing_key), range(args.load_runs)))
    return {"p50": statistics.median(latencies), "p95": p95(latencies), "per_second": args.load_runs / (time.perf_counter() - started)}


def measure_durable(durable: DurableFloor, args: argparse.Namespace, latencies: list[float]) -> dict[str, float]:
    """The durable floor's one-at-a-time samples, and its runs/s with as many worker threads as
    ours has (sent in batches of 100 by 4 threads, as ours is loaded)."""
    return {"p50": statistics.median(latencies), "p95": p95(latencies), "per_second": durable.load(args.load_runs)}


def run_id_for(kind: str, index: int) -> str:
    return "01" + hashlib.sha1(f"{kind}{index}{time.time()}".encode()).hexdigest()[:24].upper()


# --- the celery floor --------------------------------------------------------------------------

def measure_celery_chain(args: argparse.Namespace) -> dict[str, float]:
    from celery import chain

    redis.Redis.from_url(celery_floor.REDIS_URL).flushdb()
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "bench.celery_floor", "--quiet", "worker", "-Q", "floor", "-c", str(args.concurrency),
         "--loglevel", "WARNING", "-n", "floor@%h"], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, start_new_session=True)
    try:
        def workflow() -> object:
            return chain(*[celery_floor.noop.s()] * 4).apply_async(args=(0,))

        workflow().get(timeout=60)  # the worker is up
        for _ in range(20):
            workflow().get(timeout=30)
        latencies = []
        for _ in range(args.latency_samples):
            started = time.perf_counter()
            assert workflow().get(timeout=30) == 4
            latencies.append(time.perf_counter() - started)
        started = time.perf_counter()
        results = [workflow() for _ in range(args.load_runs)]
        for result in results:
            result.get(timeout=300)
        per_second = args.load_runs / (time.perf_counter() - started)
    finally:
        stop_process(worker)
    return {"p50": statistics.median(latencies), "p95": p95(latencies), "per_second": per_second}


# --- DBOS --------------------------------------------------------------------------------------

DBOS_VENV = ROOT / "bench" / ".dbos-venv"


def dbos_python() -> str:
    """DBOS lives in its own virtualenv: it brings psycopg 3, which Django would then prefer to
    the server's pinned psycopg2, and the server must be measured as it is deployed."""
    python = DBOS_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(DBOS_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r",
                        str(ROOT / "bench" / "requirements-dbos.txt")], check=True)
    return str(python)


def measure_dbos(args: argparse.Namespace) -> tuple[dict[str, float], dict[str, float]]:
    python = dbos_python()
    database_url = recreate_database(DBOS_DATABASE)
    try:
        printed = subprocess.run(
            [python, str(ROOT / "bench" / "dbos_flow.py"), database_url, str(args.latency_samples), str(args.load_runs)],
            check=True, capture_output=True, text=True, timeout=900).stdout
    finally:
        recreate_database(DBOS_DATABASE, create=False)
    result = json.loads(printed.strip().splitlines()[-1])
    latencies = result["latencies"]
    cpu_ms = {name: seconds / result["runs"] * 1000 for name, seconds in result["cpu"].items()}
    return {"p50": statistics.median(latencies), "p95": p95(latencies), "per_second": result["runs"] / result["elapsed"]}, cpu_ms


def cpu_beside_dbos(ours: dict[str, str], dbos_cpu_ms: dict[str, float]) -> dict[str, str]:
    """CPU per workflow of everything each needs, the figure the machine's other load distorts
    least: for DBOS its process and its PostgreSQL backends; for ours every process of the stack
    (the SDK app included: an orchestrator that calls apps over HTTP pays for them)."""
    dbos_total = sum(dbos_cpu_ms.values())
    ours_total = float(ours["CPU ms per workflow: all of the above"])
    figures = {f"CPU ms per workflow, DBOS: {name}": f"{ms:.2f}" for name, ms in dbos_cpu_ms.items()}
    figures["CPU ms per workflow, DBOS: all of the above"] = f"{dbos_total:.2f}"
    figures["CPU ms per workflow, DBOS ÷ ours (≈ ours ÷ DBOS in wf/s on an otherwise idle machine)"] = f"{dbos_total / ours_total:.2f}"
    return figures


# --- /e/ with a native client --------------------------------------------------------------------

WRK_SCRIPT = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"name": "bench/unmatched", "data": {"pad": "%s"}}'
""" % ("x" * 64)


def measure_ingest_wrk(running: Running, args: argparse.Namespace) -> dict[str, str]:
    """Single-event requests/s from wrk (2 threads, 16 connections), where the Python client of
    bench_ingest saturates a core first. Skipped when wrk is not installed."""
    if shutil.which("wrk") is None:
        return {"/e/ single-event requests/s, wrk": "skipped (wrk not installed)"}
    before = query(running.db, "SELECT count(*) FROM events_event", [])[0][0]
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(WRK_SCRIPT)
        script.flush()
        printed = subprocess.run(
            ["wrk", "-t2", "-c16", f"-d{args.ingest_seconds}s", "-s", script.name, f"{running.base_url}/e/bench"],
            check=True, capture_output=True, text=True).stdout
    time.sleep(1)  # requests still in flight when wrk stopped counting
    stored = query(running.db, "SELECT count(*) FROM events_event", [])[0][0] - before
    done = re.search(r"(\d+) requests in ([\d.]+)s", printed)
    requests_done, elapsed = int(done.group(1)), float(done.group(2))
    failed = re.search(r"Non-2xx or 3xx responses: (\d+)", printed)
    acknowledged = requests_done - (int(failed.group(1)) if failed else 0)
    # wrk stops counting with up to one request in flight per connection, which the server may
    # still store (a 5xx promises nothing either way): stored is at most requests + 16.
    verdict = "ok" if acknowledged <= stored <= requests_done + 16 else "MISMATCH"
    return {"/e/ single-event requests/s acknowledged, wrk -t2 -c16": f"{acknowledged / elapsed:,.0f}",
            "/e/ wrk: acknowledged ≤ stored ≤ requests + 16": f"{acknowledged:,} ≤ {stored:,} ≤ {requests_done + 16:,} ({verdict})"}


# --- memory ------------------------------------------------------------------------------------

def measure_worker_memory(running: Running, args: argparse.Namespace) -> dict[str, str]:
    """Resident size of the first worker's processes (main and pool) as it makes `memory_steps` steps
    of 3-step runs: after the first tenth (warm), then at the end."""
    worker = running.stack.workers[0]
    runs = max(100, args.memory_steps // 3 // 100 * 100)
    warm = max(100, runs // 10 // 100 * 100)
    run_load(running, warm)
    warm_rss = resident_kib(worker.pid)
    run_load(running, runs - warm)
    end_rss = resident_kib(worker.pid)
    change = (end_rss - warm_rss) / warm_rss * 100
    return {f"worker RSS after {warm * 3:,} steps → after {runs * 3:,} steps (MiB)":
            f"{warm_rss / 1024:.1f} → {end_rss / 1024:.1f} ({change:+.1f}%)"}


def resident_kib(pid: int) -> int:
    """VmRSS of a process and its children, in KiB."""
    total = 0
    pids = [pid]
    while pids:
        current = pids.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except FileNotFoundError:
            continue
        total += next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
        pids.extend(int(child) for child in children)
    return total


# --- printing ----------------------------------------------------------------------------------

def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


def derived_figures(rows: dict[str, dict[str, float]]) -> dict[str, str]:
    ours, floor, durable = rows["ours"], rows[HTTP_FLOOR], rows[DURABLE_FLOOR]
    return {
        "overhead per step over the HTTP floor, (ours − floor) / 3, p50 (ms)": f"{(ours['p50'] - floor['p50']) / 3 * 1000:.1f}",
        "the durable floor's overhead per step over the HTTP floor, p50 (ms)": f"{(durable['p50'] - floor['p50']) / 3 * 1000:.1f}",
        "overhead per step over the durable floor, (ours − durable floor) / 3, p50 (ms)":
            f"{(ours['p50'] - durable['p50']) / 3 * 1000:.1f}",
        "3-step workflows/s, ours ÷ DBOS": f"{ours['per_second'] / rows['DBOS Transact']['per_second']:.2f}",
    }


def print_table(rows: dict[str, dict[str, float]]) -> None:
    ours = rows["ours"]
    width = max(map(len, rows)) + 2
    print("\none 3-step workflow, side by side")
    print(f"  {'':<{width}}{'p50 ms':>9}{'p95 ms':>9}{'wf/s':>9}{'ours p50 ÷':>12}{'ours wf/s ÷':>13}")
    for name, row in rows.items():
        print(f"  {name:<{width}}{row['p50'] * 1000:>9.1f}{row['p95'] * 1000:>9.1f}{row['per_second']:>9.1f}"
              f"{ours['p50'] / row['p50']:>12.2f}{ours['per_second'] / row['per_second']:>13.2f}")


if __name__ == "__main__":
    main()
