"""Durable timers: a sleep spans a full restart of the production stack (server, workers, beat)."""
from __future__ import annotations

import time
from typing import Iterator

import psycopg2
import pytest
import redis

from tests.sdk_app import SdkApp, free_port, sync
from tests.stacks import ProductionStack, recreate_database, stack_redis_url, wait_for

pytestmark = pytest.mark.e2e
DATABASE = "inngest_restart_test"
REDIS_URL = stack_redis_url(11)


@pytest.fixture
def database() -> Iterator[tuple[str, psycopg2.extensions.connection]]:
    url = recreate_database(DATABASE)
    connection = psycopg2.connect(url)
    connection.autocommit = True
    yield url, connection
    connection.close()
    recreate_database(DATABASE, create=False)


def test_sleep_wakes_after_every_process_was_restarted(database) -> None:
    url, connection = database

    def query(sql: str, params: list) -> list[tuple]:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    redis.Redis.from_url(REDIS_URL).flushdb()
    port = free_port()
    stack = ProductionStack(url, REDIS_URL, query, port=port)
    app = SdkApp("restart", stack.base_url)
    try:
        sync(app)
        (internal_id,) = stack.send({"name": "test/sleeps", "data": {"seconds": 3}})
        (run,) = stack.wait_for_runs(internal_id)
        wait_for(lambda: query("SELECT count(*) FROM runs_wait WHERE run_id = %s", [run["run_id"]])[0][0] == 1,
                 what="the run to go to sleep")
        stack.stop()
        # Everything is down while the sleep comes due; Redis loses its data too.
        redis.Redis.from_url(REDIS_URL).flushdb()
        time.sleep(4)
        assert query("SELECT status FROM runs_run WHERE id = %s", [run["run_id"]]) == [("running",)]
        stack = ProductionStack(url, REDIS_URL, query, port=port)
        ended = stack.wait_for_end(run["run_id"], timeout=30)
        assert ended["status"] == "Completed"
        assert [s["name"] for s in stack.steps(run["run_id"])] == ["started", "nap", "woke"]
    finally:
        stack.stop()
        app.stop()
