"""The durable floor of bench/peers.py: what recording every step in PostgreSQL behind a queue
costs on this machine by itself, with none of the server's code.

A workflow of the durable floor makes the HTTP floor's 4 calls to the same SDK app
(peers.py `sdk_answers`), with the fewest round trips that a server which records each step
before the next call, and hands runs to workers through a queue, has to make:

- intake: the run and its call, one statement, committed;
- the queue: the call's id LPUSHed to a Redis list, BRPOPped by a worker thread;
- the claim: the call's lease taken (and the run's event read), committed;
- after each answer: the step, or at the end the run's output, written under the lease, committed.

That is 6 commits and one queue hop for the 3-step function, as ours makes. Everything else
ours does is left out: no HTTP request for the event, no validation or trigger matching, no
Celery (plain redis-py), no Django (plain psycopg2), no attempt rows, flow control, retries,
limits or events at a run's end; everything in one process. So its overhead over the HTTP floor
is what those round trips cost here, a floor for any server built this way, and ours over it is
what the server's own work adds.
"""
from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from concurrent.futures import Future, ThreadPoolExecutor

import psycopg2
import redis

QUEUE = "bench:durable-floor"
LEASE = "interval '30 seconds'"
TABLES = """
CREATE TABLE IF NOT EXISTS floor_run (id bigserial PRIMARY KEY, event jsonb NOT NULL, output jsonb, ended_at timestamptz);
CREATE TABLE IF NOT EXISTS floor_call (id bigserial PRIMARY KEY, run_id bigint NOT NULL REFERENCES floor_run,
    lease_owner text, lease_expires_at timestamptz);
CREATE TABLE IF NOT EXISTS floor_step (run_id bigint NOT NULL REFERENCES floor_run, step_id text NOT NULL, output jsonb,
    PRIMARY KEY (run_id, step_id));
"""
# Each statement is its own transaction (autocommit): one round trip, one commit.
INTAKE = """WITH run AS (INSERT INTO floor_run (event) SELECT e::jsonb FROM unnest(%(events)s::text[]) AS e RETURNING id)
    INSERT INTO floor_call (run_id) SELECT id FROM run RETURNING id"""
CLAIM = f"""UPDATE floor_call SET lease_owner = %(owner)s, lease_expires_at = now() + {LEASE}
    WHERE id = %(call)s AND (lease_expires_at IS NULL OR lease_expires_at < now())
    RETURNING run_id, (SELECT event FROM floor_run WHERE floor_run.id = floor_call.run_id)"""
RECORD = f"""WITH held AS (UPDATE floor_call SET lease_expires_at = now() + {LEASE}
    WHERE id = %(call)s AND lease_owner = %(owner)s RETURNING run_id)
    INSERT INTO floor_step (run_id, step_id, output) SELECT run_id, %(step)s, %(output)s FROM held"""
END = """WITH gone AS (DELETE FROM floor_call WHERE id = %(call)s AND lease_owner = %(owner)s RETURNING run_id)
    UPDATE floor_run SET output = %(output)s, ended_at = clock_timestamp() FROM gone WHERE floor_run.id = gone.run_id"""


def stored_event(run_id: str, sent_at: float) -> dict[str, Any]:
    """The 3-step function's event as the server stores it and sends it to the app: with its id and ts."""
    return {"name": "bench/three-steps", "data": {"sent_at": sent_at}, "id": run_id, "ts": int(sent_at * 1000)}


# (status, ops or final output) of each call of one run, made by the caller's own HTTP client.
Answers = Callable[[str, dict], Iterator[tuple[int, Any]]]


class DurableFloor:
    """`workers` threads taking calls from the queue, each with its own database connection.
    `workflow()` runs one and returns its seconds; `load(n)` runs n at once and returns runs/s."""

    def __init__(self, database_url: str, redis_url: str, answers: Answers, workers: int) -> None:
        self.database_url, self.answers = database_url, answers
        self.redis = redis.Redis.from_url(redis_url)
        self._ended: dict[int, Future[float]] = {}  # call id → perf_counter() at the run's end commit
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        intake = self._connect()
        with intake.cursor() as cursor:
            cursor.execute(TABLES)
        self._intake = threading.local()
        self._connections = [intake]
        self._threads = [threading.Thread(target=self._work, name=f"durable-floor-{i}", daemon=True) for i in range(workers)]
        for thread in self._threads:
            thread.start()

    def workflow(self, run_id: str) -> float:
        started = time.perf_counter()
        (ended,) = self._send([run_id])
        return ended.result(timeout=30) - started

    def load(self, runs: int, batch: int = 100, senders: int = 4) -> float:
        """Runs/s of `runs` events sent in batches by `senders` threads, as peers.py loads ours."""
        started = time.perf_counter()
        with ThreadPoolExecutor(senders) as pool:
            batches = pool.map(lambda b: self._send([f"load-{b}-{i}" for i in range(batch)]), range(runs // batch))
            ended = [future.result(timeout=600) for futures in list(batches) for future in futures]
        return len(ended) / (max(ended) - started)

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=10)
        for db in self._connections:
            db.close()

    def _connect(self) -> psycopg2.extensions.connection:
        db = psycopg2.connect(self.database_url)
        db.autocommit = True
        return db

    def _send(self, run_ids: list[str]) -> list[Future[float]]:
        if not hasattr(self._intake, "db"):
            self._intake.db = self._connect()
            with self._lock:
                self._connections.append(self._intake.db)
        now = time.time()
        events = [json.dumps(stored_event(run_id, now)) for run_id in run_ids]
        with self._intake.db.cursor() as cursor:
            cursor.execute(INTAKE, {"events": events})
            calls = [call for (call,) in cursor.fetchall()]
        futures: list[Future[float]] = [Future() for _ in calls]
        with self._lock:
            self._ended.update(zip(calls, futures))
        self.redis.lpush(QUEUE, *calls)
        return futures

    def _work(self) -> None:
        db = self._connect()
        with self._lock:
            self._connections.append(db)
        owner = uuid.uuid4().hex
        while not self._stopping.is_set():
            taken = self.redis.brpop([QUEUE], timeout=1)
            if taken is None:
                continue
            call = int(taken[1])
            with self._lock:
                ended = self._ended.pop(call)
            try:
                self._run_call(db, owner, call)
            except Exception as exc:  # noqa: BLE001 - the sample waiting for this run fails with it
                ended.set_exception(exc)
            else:
                ended.set_result(time.perf_counter())

    def _run_call(self, db: psycopg2.extensions.connection, owner: str, call: int) -> None:
        """Claim the call, then call the app until the run ends, recording each answer first."""
        with db.cursor() as cursor:
            cursor.execute(CLAIM, {"owner": owner, "call": call})
            claimed = cursor.fetchone()
            if claimed is None:
                raise RuntimeError(f"call {call} was already claimed")
            event = claimed[1]
            for status, payload in self.answers(event["id"], event):
                if status == 206:
                    for op in payload:
                        cursor.execute(RECORD, {"owner": owner, "call": call, "step": op["id"], "output": json.dumps(op["data"])})
                else:
                    cursor.execute(END, {"owner": owner, "call": call, "output": payload.decode()})
