"""`manage.py start`: the production stack as child processes, configured by file, env and flags."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
import redis
import requests

from tests.sdk_app import free_port
from tests.stacks import MANAGE, ROOT, TEST_ENV, recreate_database, stack_redis_url, wait_for, wait_http

pytestmark = pytest.mark.e2e
DATABASE = "inngest_start_test"


@pytest.fixture
def empty_database() -> Iterator[str]:
    yield recreate_database(DATABASE)
    recreate_database(DATABASE, create=False)


def test_start_runs_server_workers_and_beat_and_stops_them_together(tmp_path: Path, empty_database: str) -> None:
    redis.Redis.from_url(stack_redis_url(12)).flushdb()
    port = free_port()
    config = tmp_path / "inngest.yaml"
    # The file names a port that the flag overrides, and the broker the flag does not give.
    config.write_text(f"port: 1\nredis_url: {stack_redis_url(12)}\nworkers: 1\nconcurrency: 2\n")
    env = {**os.environ, **TEST_ENV}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    process = subprocess.Popen(
        [sys.executable, MANAGE, "start", "--config", str(config), "--port", str(port), "--host", "127.0.0.1",
         "--database-url", empty_database],
        env=env, cwd=ROOT, start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/health")
        answer = requests.post(f"http://127.0.0.1:{port}/e/key", json={"name": "start/check"}, timeout=5)
        assert answer.status_code == 200
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
