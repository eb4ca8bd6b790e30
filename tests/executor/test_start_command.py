"""`manage.py start`: the production stack as child processes, configured by file, env and flags."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import psycopg2
import pytest
import redis
import requests

from inngest_project.management.commands.start import build_environment
from tests.sdk_app import free_port
from tests.stacks import MANAGE, PRODUCTION_ENV, ROOT, TEST_ENV, recreate_database, stack_redis_url, wait_for, wait_http

pytestmark = pytest.mark.e2e
DATABASE = "inngest_start_test"
SIGNING_KEY = "signkey-prod-" + "5e" * 32


@pytest.fixture
def empty_database() -> Iterator[str]:
    yield recreate_database(DATABASE)
    recreate_database(DATABASE, create=False)


def test_start_runs_server_workers_and_beat_and_stops_them_together(tmp_path: Path, empty_database: str) -> None:
    redis.Redis.from_url(stack_redis_url(12)).flushdb()
    port = free_port()
    config = tmp_path / "inngest.yaml"
    # The file names a port that the flag overrides, and the broker the flag does not give.
    config.write_text(f"port: 1\nredis_url: {stack_redis_url(12)}\nworkers: 1\nconcurrency: 2\ninsecure: true\n")
    env = {**os.environ, **TEST_ENV, **PRODUCTION_ENV}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    output = tmp_path / "output.log"
    with output.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, MANAGE, "start", "--config", str(config), "--port", str(port), "--host", "127.0.0.1",
             "--database-url", empty_database],
            env=env, cwd=ROOT, start_new_session=True, stdout=sink, stderr=sink)
    try:
        wait_http(f"http://127.0.0.1:{port}/health")
        answer = requests.post(f"http://127.0.0.1:{port}/e/key", json={"name": "start/check"}, timeout=5)
        assert answer.status_code == 200
        # Told to run open (`insecure: true`, no signing key): it does, and says so at start and on /health.
        health = requests.get(f"http://127.0.0.1:{port}/health", timeout=5).json()
        assert health["insecure"] is True and health["warning"].startswith("INSECURE (INNGEST_INSECURE is set): INNGEST_SIGNING_KEY")
        assert "(inngest.W001) INSECURE" in output.read_text()
        children = _children(process.pid)
        commands = [_command_line(pid) for pid in children]
        assert len(children) == 4, commands  # gunicorn, a celery worker for calls, the timer worker, celery beat
        assert sum(" worker -Q inngest -c 2 " in command for command in commands) == 1
        assert sum(" worker -Q inngest-timers -c 2 " in command for command in commands) == 1
    finally:
        os.kill(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    assert process.returncode == 0
    wait_for(lambda: not any(_alive(pid) for pid in children), timeout=20, what="every child to exit")


def test_start_refuses_an_open_production_and_says_what_is_missing(empty_database: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INNGEST_", "DJANGO_"))}
    result = subprocess.run([sys.executable, MANAGE, "start", "--database-url", empty_database, "--redis-url", stack_redis_url(11)],
                            env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "refusing to start:\n(inngest.E001) INNGEST_SIGNING_KEY (start --signing-key) is not set" in result.stderr
    assert "(inngest.E002) DJANGO_SECRET_KEY is not set" in result.stderr
    assert "(inngest.E003) DJANGO_ALLOWED_HOSTS is not set" in result.stderr
    assert "`start --insecure` or INNGEST_INSECURE=1" in result.stderr
    assert psycopg2_tables(empty_database) == 0  # stopped before migrating


def test_start_takes_an_inngest_start_config_and_runs_closed(tmp_path: Path, empty_database: str) -> None:
    """`inngest start`'s own config keys and environment names carry over: the signing key and
    several event keys, the database and the broker."""
    redis.Redis.from_url(stack_redis_url(12)).flushdb()
    port = free_port()
    config = tmp_path / "inngest.yaml"
    config.write_text(f"signing-key: {SIGNING_KEY}\nevent-key:\n  - first-event-key-0001\n  - second-event-key-0002\n"
                      f"postgres-uri: {empty_database}\n")
    env = {**{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}, **TEST_ENV, **PRODUCTION_ENV,
           "INNGEST_REDIS_URI": stack_redis_url(12)}
    output = tmp_path / "output.log"
    with output.open("w") as sink:
        process = subprocess.Popen([sys.executable, MANAGE, "start", "--config", str(config), "--port", str(port),
                                    "--host", "127.0.0.1", "--workers", "0"], env=env, cwd=ROOT, start_new_session=True,
                                   stdout=sink, stderr=sink)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/health")
        event = {"name": "start/closed"}
        assert [requests.post(f"{base}/e/{key}", json=event, timeout=5).status_code
                for key in ("first-event-key-0001", "second-event-key-0002", "third-event-key-0003")] == [200, 200, 401]
        assert requests.post(f"{base}/fn/register", json={}, timeout=5).status_code == 401
        assert requests.get(f"{base}/health", timeout=5).json() == {"status": 200, "message": "OK"}
        assert requests.get(f"{base}/health", timeout=5).headers["X-Inngest-Server-Kind"] == "cloud"
        # Django's deploy checks ran and their warnings were printed (no TLS here: no HSTS).
        assert "(security.W004)" in output.read_text()
    finally:
        os.kill(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def test_start_flags_name_the_keys_as_inngest_start_does() -> None:
    options = {"signing_key": SIGNING_KEY, "event_keys": ["one", "two,three"], "insecure": True,
               "database_url": None, "redis_url": None}
    env = build_environment(options)
    assert (env["INNGEST_SIGNING_KEY"], env["INNGEST_EVENT_KEY"], env["INNGEST_INSECURE"]) == (SIGNING_KEY, "one,two,three", "true")


def test_start_refuses_to_run_without_a_broker(empty_database: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    result = subprocess.run([sys.executable, MANAGE, "start", "--database-url", empty_database],
                            env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "--redis-url" in result.stderr


@pytest.mark.parametrize(("config", "message"), [
    ("lease_seconds: soon\n", "invalid configuration: INNGEST_LEASE_SECONDS"),
    ("signing_key: signkey-prod-xyz\n", "invalid configuration: INNGEST_SIGNING_KEY must be a hex string"),
    ("log_format: xml\n", "invalid configuration: INNGEST_LOG_FORMAT must be json or text"),
    ("colour: blue\n", "unknown keys colour"),
])
def test_start_refuses_a_bad_configuration_with_a_clear_message(tmp_path: Path, empty_database: str, config: str,
                                                               message: str) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text(config)
    env = {k: v for k, v in os.environ.items() if not k.startswith("INNGEST_")}
    result = subprocess.run([sys.executable, MANAGE, "start", "--config", str(path), "--database-url", empty_database,
                             "--redis-url", stack_redis_url(11)], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert message in result.stderr


def _children(pid: int) -> list[int]:
    output = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(line) for line in output.split()]


def _command_line(pid: int) -> str:
    return subprocess.run(["ps", "-ww", "-o", "args=", "-p", str(pid)], capture_output=True, text=True).stdout.strip()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    state = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True).stdout.strip()
    return bool(state) and not state.startswith("Z")


def psycopg2_tables(database_url: str) -> int:
    connection = psycopg2.connect(database_url)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
            return cursor.fetchone()[0]
    finally:
        connection.close()
