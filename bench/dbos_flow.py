"""The peer (bench/peers.py): the same 3-step workflow in DBOS Transact, on the same PostgreSQL.

Run as its own process: `python bench/dbos_flow.py DATABASE_URL SAMPLES RUNS`. Prints one JSON
line: the end-to-end seconds of SAMPLES workflows run one at a time, then the seconds taken by
RUNS workflows started at once (DBOS runs them on its own thread pool), and the CPU seconds
those RUNS took in this process and in the PostgreSQL backends serving its database.
"""
from __future__ import annotations

import json
import logging
import os
import resource
import sys
import time
from pathlib import Path

import psycopg
from dbos import DBOS


@DBOS.step()
def first_call_at() -> float:
    return time.time()


@DBOS.step()
def two() -> int:
    return 2


@DBOS.step()
def three() -> int:
    return 3


@DBOS.workflow()
def three_steps(sent_at: float) -> dict:
    first = first_call_at()
    return {"first_call_at": first, "sum": two() + three(), "sent_at": sent_at}


def main() -> None:
    database_url, samples, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    logging.getLogger("dbos").setLevel(logging.WARNING)
    DBOS(config={"name": "bench-dbos", "system_database_url": database_url, "log_level": "WARNING"})
    DBOS.launch()
    for _ in range(20):  # warm up: connections, prepared paths
        three_steps(time.time())
    latencies, first_calls = [], []
    for _ in range(samples):
        started = time.time()
        output = three_steps(started)
        latencies.append(time.time() - started)
        first_calls.append(output["first_call_at"] - started)
    cpu_before = cpu_seconds(database_url)
    started = time.time()
    handles = [DBOS.start_workflow(three_steps, started) for _ in range(runs)]
    for handle in handles:
        handle.get_result()
    elapsed = time.time() - started
    cpu = {name: after - cpu_before[name] for name, after in cpu_seconds(database_url).items()}
    print(json.dumps({"latencies": latencies, "first_calls": first_calls, "runs": runs, "elapsed": elapsed, "cpu": cpu}))
    DBOS.destroy()


def cpu_seconds(database_url: str) -> dict[str, float]:
    """User + system CPU so far of this process and of the PostgreSQL backends serving its database."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    with psycopg.connect(database_url) as connection:
        pids = [pid for (pid,) in connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")]
    backends = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except FileNotFoundError:
            continue
        backends += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return {"DBOS process": usage.ru_utime + usage.ru_stime, "PostgreSQL backends": backends}


if __name__ == "__main__":
    main()
