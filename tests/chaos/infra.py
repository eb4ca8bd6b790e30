"""Throwaway PostgreSQL and Redis servers on spare ports, for the chaos suite to stop and restart.

The shared servers on 5432 and 6379 are never touched: each of these lives in a temporary
directory, listens on a port nobody else uses, and is removed when the suite ends.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from typing import Any

import psycopg2
import redis

from tests.sdk_app import free_port
from tests.stacks import wait_for


def _postgres_binary(name: str) -> str:
    """initdb and pg_ctl are not on PATH where Debian's packages install them."""
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if not found:
        raise RuntimeError(f"{name} not found: the chaos suite needs PostgreSQL's server binaries")
    return found


class ThrowawayPostgres:
    """`initdb` in a temp directory and `pg_ctl` on a spare port, trust auth for user postgres.

    PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` user.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.directory = tempfile.mkdtemp(prefix="chaos-pg-")
        self.data = os.path.join(self.directory, "data")
        self._as_owner: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
            self._as_owner = ["runuser", "-u", "postgres", "--"]
        self._run(_postgres_binary("initdb"), "-D", self.data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
        self.start()

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *command: str) -> None:
        subprocess.run([*self._as_owner, *command], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory} -c max_connections=200"
        self._run(_postgres_binary("pg_ctl"), "-D", self.data, "-l", os.path.join(self.directory, "log"),
                  "-w", "-t", "60", "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        """`immediate` is a crash as far as clients can tell: connections drop, recovery replays WAL."""
        self._run(_postgres_binary("pg_ctl"), "-D", self.data, "-m", mode, "-w", "-t", "60", "stop")

    def create_database(self, name: str) -> str:
        admin = psycopg2.connect(self.url("postgres"))
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {name}")
        admin.close()
        return self.url(name)

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass  # already stopped
        shutil.rmtree(self.directory, ignore_errors=True)


class ThrowawayRedis:
    """`redis-server` on a spare port with no persistence: a restart comes back empty."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        wait_for(lambda: _pings(client), timeout=20, what=f"redis-server on port {self.port}")

    def kill(self) -> None:
        """SIGKILL: whatever it held is gone, as after a crash of a broker without persistence."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def restart_empty(self) -> None:
        self.kill()
        self.start()


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


def reconnecting_query(database_url: str) -> Any:
    """A `query(sql, params)` that opens a connection per call: it outlives database restarts."""

    def query(sql: str, params: list) -> list[tuple]:
        deadline = time.monotonic() + 30
        while True:
            try:
                connection = psycopg2.connect(database_url, connect_timeout=5)
                break
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall()
        finally:
            connection.close()

    return query
