"""Running the server for end-to-end tests: dev mode (one process, SQLite) and production mode
(gunicorn, the timer worker and beat from `manage.py start`, celery worker processes for calls,
PostgreSQL, Redis)."""
from __future__ import annotations

import json
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import psycopg2
import requests

POSTGRES_URL = "postgres://postgres@127.0.0.1:5432"
ROOT = Path(__file__).resolve().parent.parent
MANAGE = str(ROOT / "manage.py")
# Fast retries and short leases keep the suite quick; the logic is the same as with defaults.
TEST_ENV = {
    "INNGEST_RETRY_INTERVAL": "0.2",
    "INNGEST_LEASE_SECONDS": "3",
    "INNGEST_SWEEP_SECONDS": "0.5",
    "INNGEST_LOG_LEVEL": "WARNING",
    # Small enough that the large-batch test goes through `use_api` with events of 40 KB.
    "INNGEST_MAX_CALL_BODY_BYTES": "65536",
    # Run limits small enough to reach in a test (tests/scripted_app.py), above what other tests use.
    "INNGEST_MAX_STEPS_PER_RUN": "30",
    "INNGEST_MAX_STEP_OUTPUT_BYTES": "100000",
    "INNGEST_MAX_STATE_BYTES": "500000",
    "INNGEST_MAX_CALLS_WITHOUT_PROGRESS": "20",
    # Realtime limits small enough to reach in a test (tests/realtime/).
    "INNGEST_REALTIME_MAX_SUBSCRIBERS_PER_TOKEN": "3",
    "INNGEST_REALTIME_SUBSCRIBER_BUFFER": "20",
    "INNGEST_REALTIME_IDLE_SECONDS": "6",
    "INNGEST_REALTIME_KEEPALIVE_SECONDS": "1",
    "INNGEST_REALTIME_MAX_MESSAGE_BYTES": "200000",
}

# What production refuses to start without (inngest_project/security.py), given on purpose: a secret
# key and the host names the tests reach the server by. The suite's production stacks have no
# signing key, because its SDK apps run in dev mode, so they also say INNGEST_INSECURE, on
# purpose; the stacks that test keys (test_signing_e2e.py) start closed, with insecure=False.
PRODUCTION_ENV = {
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
}


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.1, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def wait_http(url: str, timeout: float = 150.0, any_answer: bool = False) -> None:
    """Until `url` answers 200 (`any_answer`: any status below 500, as an SDK app in production
    mode answers an unsigned GET with 401)."""
    # Generous: on a loaded machine (shared CI, 2 cores) migrating a fresh database and starting
    # gunicorn, beat and the timer worker have taken over 60 s before the first /health.
    def ready() -> bool:
        try:
            status = requests.get(url, timeout=1).status_code
        except requests.RequestException:
            return False
        return status < 500 if any_answer else status == 200

    wait_for(ready, timeout=timeout, interval=0.2, what=url)


def stop_process(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, sig)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


class Stack:
    """What every test needs of a running server, whatever its mode."""

    base_url: str
    event_key = "test-key"
    headers: dict[str, str] = {}  # Authorization for /v1 when the server has a signing key

    def send(self, events: Any) -> list[str]:
        answer = requests.post(f"{self.base_url}/e/{self.event_key}", json=events, timeout=10)
        assert answer.status_code == 200, answer.text
        return answer.json()["ids"]

    def runs_of_event(self, internal_id: str) -> list[dict]:
        answer = requests.get(f"{self.base_url}/v1/events/{internal_id}/runs", headers=self.headers, timeout=10)
        assert answer.status_code == 200, answer.text
        return answer.json()["data"]

    def wait_for_runs(self, internal_id: str, count: int = 1, timeout: float = 20) -> list[dict]:
        return wait_for(lambda: (r := self.runs_of_event(internal_id)) and len(r) >= count and r,
                        timeout=timeout, what=f"{count} runs of event {internal_id}")

    def wait_for_end(self, run_id: str, timeout: float = 30) -> dict:
        def ended() -> dict | None:
            run = requests.get(f"{self.base_url}/v1/runs/{run_id}", headers=self.headers, timeout=10).json()["data"]
            return run if run["status"] != "Running" else None

        return wait_for(ended, timeout=timeout, what=f"run {run_id} to end")

    def run_once(self, event: dict, timeout: float = 30) -> dict:
        (internal_id,) = self.send(event)
        (run,) = self.wait_for_runs(internal_id)
        return self.wait_for_end(run["run_id"], timeout=timeout)

    def steps(self, run_id: str) -> list[dict]:
        rows = self.query("SELECT step_id, name, op, output FROM runs_step WHERE run_id = %s ORDER BY position", [run_id])
        return [{"step_id": r[0], "name": r[1], "op": r[2], "output": _json(r[3])} for r in rows]

    def attempts(self, run_id: str) -> list[dict]:
        rows = self.query(
            "SELECT step_target, attempt, status_code, opcode, started_at, ended_at, is_checkpointed, error "
            "FROM runs_stepattempt WHERE run_id = %s ORDER BY started_at, id", [run_id])
        keys = ("step_target", "attempt", "status_code", "opcode", "started_at", "ended_at", "is_checkpointed", "error")
        return [dict(zip(keys, (*row[:6], bool(row[6]), _json(row[7])))) for row in rows]

    def query(self, sql: str, params: list) -> list[tuple]:
        raise NotImplementedError


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


class DevStack(Stack):
    """`manage.py dev` in a subprocess with its own SQLite file."""

    def __init__(self, data_dir: Path, app_urls: list[str], port: int) -> None:
        self.port = port
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.db_path = data_dir / "dev.sqlite3"
        env = {**os.environ, **TEST_ENV, "INNGEST_DEV_DATA_DIR": str(data_dir), "INNGEST_SYNC_POLL_SECONDS": "1"}
        env.pop("DATABASE_URL", None)
        env.pop("REDIS_URL", None)
        urls = [arg for url in app_urls for arg in ("--urls", url)]
        self.process = subprocess.Popen([sys.executable, MANAGE, "dev", "--port", str(self.port), *urls],
                                        env=env, cwd=ROOT, start_new_session=True)
        try:
            wait_http(f"{self.base_url}/health")
        except AssertionError:
            self.stop()
            raise

    def stop(self) -> None:
        stop_process(self.process)

    def query(self, sql: str, params: list) -> list[tuple]:
        with sqlite3.connect(self.db_path, timeout=30) as conn:
            return conn.execute(sql.replace("%s", "?"), params).fetchall()


class ProductionStack(Stack):
    """`manage.py start --workers 0` (gunicorn, the timer worker, beat) plus call workers this class controls."""

    def __init__(self, database_url: str, redis_url: str, query: Callable[[str, list], list[tuple]],
                 workers: int = 1, worker_concurrency: int = 4, port: int | None = None,
                 extra_env: dict[str, str] | None = None, insecure: bool = True, output: Any = None,
                 worker_pool: str | None = None) -> None:
        from tests.sdk_app import free_port

        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **TEST_ENV, **PRODUCTION_ENV, "DATABASE_URL": database_url, "REDIS_URL": redis_url,
                    **({"INNGEST_INSECURE": "true"} if insecure else {}), **(extra_env or {})}
        self._query = query
        # `output`: a file for the stack's stdout and stderr (what it logs), instead of the test's own.
        self.output = output
        self.server = subprocess.Popen(
            [sys.executable, MANAGE, "start", "--port", str(self.port), "--host", "127.0.0.1", "--workers", "0"],
            env=self.env, cwd=ROOT, start_new_session=True, stdout=output, stderr=output)
        self.workers: list[subprocess.Popen] = []
        self.worker_pool = worker_pool  # None: the server's default (settings.CELERY_WORKER_POOL)
        for _ in range(workers):
            self.start_worker(worker_concurrency)
        try:
            wait_http(f"{self.base_url}/health")
        except AssertionError:
            self.stop()  # workers left behind would take the next stack's messages
            raise

    def start_worker(self, concurrency: int = 4, wrapper: list[str] | None = None) -> subprocess.Popen:
        """A call worker; `wrapper`: a command it runs under (bench/instructions.py: callgrind)."""
        worker = subprocess.Popen(
            [*(wrapper or []), sys.executable, "-m", "celery", "-A", "inngest_project", "--quiet", "worker", "-Q", "inngest",
             "-c", str(concurrency), *(["-P", self.worker_pool] if self.worker_pool else []), "--loglevel", "WARNING",
             "-n", f"test{len(self.workers)}@%h"],
            env=self.env, cwd=ROOT, start_new_session=True, stdout=self.output, stderr=self.output)
        self.workers.append(worker)
        return worker

    def stop(self) -> None:
        for worker in self.workers:
            stop_process(worker)
        stop_process(self.server)

    def query(self, sql: str, params: list) -> list[tuple]:
        return self._query(sql, params)


def query_function(database_url: str) -> tuple[Callable[[str, list], list[tuple]], Any]:
    """An autocommit connection to a stack's database and a `query(sql, params)` over it."""
    connection = psycopg2.connect(database_url)
    connection.autocommit = True

    def query(sql: str, params: list) -> list[tuple]:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    return query, connection


# Several checkouts can run the suite at once on one machine: each sets its own Redis server
# (TEST_REDIS_PORT) and a suffix for the databases it creates (TEST_DATABASE_SUFFIX).
TEST_REDIS_PORT = int(os.environ.get("TEST_REDIS_PORT", "6379"))
TEST_DATABASE_SUFFIX = os.environ.get("TEST_DATABASE_SUFFIX", "")


def stack_redis_url(db: int) -> str:
    return f"redis://127.0.0.1:{TEST_REDIS_PORT}/{db}"


def recreate_database(name: str, create: bool = True) -> str:
    name += TEST_DATABASE_SUFFIX
    admin = psycopg2.connect(f"{POSTGRES_URL}/postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        if create:
            cursor.execute(f"CREATE DATABASE {name}")
    admin.close()
    return f"{POSTGRES_URL}/{name}"
