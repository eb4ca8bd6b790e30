"""Django's SELECT 1 health check, skipped on a connection used a moment ago (core/postgresql/base.py,
the ENGINE of every PostgreSQL database): what a busy server's requests save, and what an idle or
broken connection still gets."""
from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg2
import pytest
from django.db import OperationalError, close_old_connections, connection, connections

from core.postgresql import base as backend
from events.models import Event
from tests.db_wire import Wire, recording

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def wire() -> Iterator[Wire]:
    yield from recording()


def a_request() -> None:
    """What Django does around a request that reads the database."""
    close_old_connections()
    Event.objects.count()
    close_old_connections()


def test_every_postgresql_connection_uses_the_backend() -> None:
    assert connection.settings_dict["ENGINE"] == "core.postgresql"
    assert isinstance(connections["default"], backend.DatabaseWrapper)
    assert connection.health_check_enabled


def test_a_request_right_after_another_sends_no_health_check_an_idle_connection_does(
        wire: Wire, monkeypatch: pytest.MonkeyPatch) -> None:
    a_request()  # a new connection: healthy by definition
    a_request()
    a_request()
    assert wire.health_checks() == 0
    monkeypatch.setattr(backend, "FRESH_SECONDS", 0.05)
    time.sleep(0.1)
    a_request()  # idle longer than FRESH_SECONDS: checked first
    assert wire.health_checks() == 1
    a_request()
    assert wire.health_checks() == 1
    assert sum(1 for _, sql in wire.sent if "events_event" in sql) == 5


def test_a_connection_with_an_error_is_checked_however_recent_and_replaced() -> None:
    a_request()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    with psycopg2.connect(**connection.get_connection_params()) as killer:
        killer.autocommit = True
        killer.cursor().execute("SELECT pg_terminate_backend(%s)", [pid])
    # Used a moment ago, so not checked: the next statement finds the connection gone...
    close_old_connections()
    with pytest.raises(OperationalError):
        Event.objects.count()
    assert connection.errors_occurred
    # ...and marks it: at the next request Django checks it, closes it and connects again.
    a_request()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != pid
