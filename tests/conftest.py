"""Shared fixtures: the two server stacks, each with its own SDK app, for end-to-end tests."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
import redis

from tests.sdk_app import SdkApp, sync
from tests.stacks import DevStack, ProductionStack, query_function, recreate_database, stack_redis_url, wait_for

TEST_REDIS_URL = stack_redis_url(15)
E2E_DATABASE = "inngest_e2e"


@pytest.fixture(scope="session")
def dev_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DevStack, SdkApp]]:
    """The dev server as a user runs it: `manage.py dev --urls <app>`; the app is synced by polling."""
    data_dir: Path = tmp_path_factory.mktemp("dev-server")
    from tests.sdk_app import free_port

    port = free_port()
    app = SdkApp("core-dev", f"http://127.0.0.1:{port}")
    stack = DevStack(data_dir, [app.url], port=port)
    try:
        wait_for(lambda: stack.query("SELECT count(*) FROM functions_function", [])[0][0] >= app.function_count,
                 timeout=30, what="the dev server to sync the app given with --urls")
        yield stack, app
    finally:
        stack.stop()
        app.stop()


@pytest.fixture(scope="session")
def production_stack() -> Iterator[tuple[ProductionStack, SdkApp]]:
    """gunicorn + the timer worker + beat + a call worker on a PostgreSQL database and a Redis database of their own.

    Not the pytest-django test database: the stack's rows must not leak into the tests that
    expect empty tables, and those tests' transactions must not hide rows from the stack.
    """
    database_url = recreate_database(E2E_DATABASE)
    redis.Redis.from_url(TEST_REDIS_URL).flushdb()
    query, connection = query_function(database_url)

    # The fake model server of the step.fetch / step.ai.infer tests listens on loopback, which
    # production refuses unless the operator allows it (executor/url_policy.py).
    stack = ProductionStack(database_url, TEST_REDIS_URL, query, extra_env={"INNGEST_GATEWAY_ALLOWED_NETWORKS": "127.0.0.0/8"})
    app = SdkApp("core-prod", stack.base_url)
    try:
        sync(app)
        yield stack, app
    finally:
        stack.stop()
        app.stop()
        connection.close()
        recreate_database(E2E_DATABASE, create=False)


@pytest.fixture(params=["dev", "production"])
def stack(request: pytest.FixtureRequest) -> tuple:
    """Each end-to-end test runs against both modes."""
    return request.getfixturevalue(f"{request.param}_stack")
