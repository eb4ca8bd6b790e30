"""The peer (bench/peers.py): the same 3-step workflow in DBOS Transact, on the same PostgreSQL.

Run as its own process: `python bench/dbos_flow.py DATABASE_URL SAMPLES RUNS`. Prints one JSON
line: the end-to-end seconds of SAMPLES workflows run one at a time, then the seconds taken by
RUNS workflows started at once (DBOS runs them on its own thread pool).
"""
from __future__ import annotations

import json
import logging
import sys
import time

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
    started = time.time()
    handles = [DBOS.start_workflow(three_steps, started) for _ in range(runs)]
    for handle in handles:
        handle.get_result()
    elapsed = time.time() - started
    print(json.dumps({"latencies": latencies, "first_calls": first_calls, "runs": runs, "elapsed": elapsed}))
    DBOS.destroy()


if __name__ == "__main__":
    main()
