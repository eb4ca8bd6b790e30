"""Django's PostgreSQL backend (ENGINE "core.postgresql"), without a health check on a connection
used a moment ago.

With CONN_HEALTH_CHECKS on (settings.py), Django sends `SELECT 1` on a persistent connection
before its first query after each `close_old_connections()`: at the start of every request, and
wherever a thread that serves no request calls it (the event group committer, the native
routes' pool threads). On a busy server that is one more round trip per request, to learn what
the connection's last use, a moment before, already showed.

Here a connection that made a cursor less than FRESH_SECONDS ago, with no error since, is
taken to be alive. An idle one is still checked, and so is one with an error: Django itself
checks a connection with errors when it closes old connections. A database that goes away
within that second fails the next statement instead of its check, which is what happens anyway
when it goes away between the check and the statement (and always without health checks,
Django's default).
"""
from __future__ import annotations

import math
import time
from typing import Any

from django.db.backends.postgresql import base

FRESH_SECONDS = 1.0


class DatabaseWrapper(base.DatabaseWrapper):
    cursor_made_at = -math.inf  # time.monotonic() of the last cursor this connection made

    def _cursor(self, name: str | None = None) -> Any:
        cursor = super()._cursor(name)
        self.cursor_made_at = time.monotonic()
        return cursor

    def close_if_health_check_failed(self) -> None:
        if (self.connection is not None and not self.errors_occurred
                and time.monotonic() - self.cursor_made_at < FRESH_SECONDS):
            self.health_check_done = True
        super().close_if_health_check_failed()
