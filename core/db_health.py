"""Django's database health checks, without a round trip on a connection used a moment ago.

With CONN_HEALTH_CHECKS on (settings.py), Django sends `SELECT 1` on a persistent connection
before its first query after each `close_old_connections()`: at the start of every request, and
wherever a thread that serves no request calls it. The event group committer (events/group_commit.py)
commits many times a second, each time on the way of an event to its run's first call: that was
one more round trip each time, to learn what the connection's last use, a moment before, already
showed. The event route's pool threads (inngest_project/event_route.py) do the same.

A connection whose last use ended well less than FRESH_SECONDS ago is taken to be alive here. An
idle one is still checked, and so is one whose last use failed: Django itself checks a connection
with errors when it closes old connections, and a failed commit forgets its connection's last use.
(Django's own requests still check at each start: its test client relies on owning those signals.)
A database that goes away within that second fails the next statement instead of its check,
which is what happens anyway when it goes away between the check and the statement.
"""
from __future__ import annotations

import math
import time

from django.db import close_old_connections, connections

FRESH_SECONDS = 1.0
_USED_AT = "inngest_used_at"  # monotonic time the connection's last good use ended


def close_old_connections_keeping_fresh() -> None:
    """Django's `close_old_connections()` (drop a connection past its age or broken), then no
    health check for this thread's connections used well less than FRESH_SECONDS ago."""
    close_old_connections()
    now = time.monotonic()
    for conn in connections.all(initialized_only=True):
        if conn.connection is not None and now - getattr(conn, _USED_AT, -math.inf) < FRESH_SECONDS:
            conn.health_check_done = True


def note_connections_used() -> None:
    """This thread's connections were just used well (a request ended, a commit went through)."""
    now = time.monotonic()
    for conn in connections.all(initialized_only=True):
        if conn.connection is not None and not conn.errors_occurred:
            setattr(conn, _USED_AT, now)


def forget_connections_used() -> None:
    """A use failed: the next one checks its connection first."""
    for conn in connections.all(initialized_only=True):
        setattr(conn, _USED_AT, -math.inf)
