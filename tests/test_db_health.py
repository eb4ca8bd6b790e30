"""Django's SELECT 1 health check, skipped on a connection used well a moment ago
(core/db_health.py: the event group committer and the event route's pool threads)."""
from __future__ import annotations

import time

import pytest
from django.db import connection

from core import db_health
from events.models import Event

pytestmark = pytest.mark.django_db(transaction=True)


def a_use() -> bool:
    """One use of this thread's connection as the committer makes it; whether a health check
    came before its query."""
    db_health.close_old_connections_keeping_fresh()
    will_check = connection.connection is not None and not connection.health_check_done
    Event.objects.count()
    db_health.note_connections_used()
    return will_check


def test_a_use_right_after_another_skips_the_health_check_an_idle_connection_does_not(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert connection.health_check_enabled
    a_use()
    assert a_use() is False  # the previous use ended a moment ago
    monkeypatch.setattr(db_health, "FRESH_SECONDS", 0.05)
    time.sleep(0.1)
    assert a_use() is True  # idle longer than FRESH_SECONDS: checked
    assert a_use() is False


def test_a_connection_whose_use_failed_is_checked_however_recent() -> None:
    a_use()
    db_health.forget_connections_used()  # what the group committer does when a commit fails
    assert a_use() is True
