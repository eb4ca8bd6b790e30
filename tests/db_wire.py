"""What a test process's PostgreSQL connections send, seen on their own cursors."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import psycopg2.extensions
from django.db import connection
from django.db.backends.signals import connection_created


class Wire:
    """Every statement this process's PostgreSQL connections send, with the thread that sent it:
    each new connection's cursors record what they execute (Django's `is_usable` included, which
    bypasses Django's own cursor wrappers)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []
        wire = self

        class RecordingCursor(psycopg2.extensions.cursor):
            def execute(self, sql: str | bytes, params: Any = None) -> None:
                wire.sent.append((threading.current_thread().name, sql if isinstance(sql, str) else sql.decode()))
                return super().execute(sql, params)

        self.cursor_class = RecordingCursor

    def on_connection_created(self, sender: type, connection: Any, **kwargs: Any) -> None:
        connection.connection.cursor_factory = self.cursor_class

    def health_checks(self, thread: str | None = None) -> int:
        return sum(1 for name, sql in self.sent if sql == "SELECT 1" and (thread is None or name == thread))


def recording() -> Iterator[Wire]:
    """For a fixture: a Wire from this thread's next connection on (and every other thread's)."""
    recorder = Wire()
    connection.close()  # the next connection of this thread is made with the recorder on
    connection_created.connect(recorder.on_connection_created)
    yield recorder
    connection_created.disconnect(recorder.on_connection_created)
