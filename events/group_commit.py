"""Group commit for event ingestion: concurrent requests of one process share one transaction.

A request thread hands its validated events to the process's committer and waits. The committer
thread stores everything handed to it since its previous commit in one transaction (a small
group often in one statement, runs/intake.py; otherwise one insert, one trigger lookup, one wait
lookup for the whole group), then wakes every request of the group.
Nothing is acknowledged before its commit. A commit that fails because of one request's data is
retried request by request, so only that request fails; one that fails because the database is
unreachable fails every request of its group, none of whose events were stored. One request
alone is committed at once: there is no timer, only the requests that arrived while the previous
commit was running.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from django.db import InterfaceError, OperationalError, close_old_connections, connection

from events.models import Event

# A request waits this long for its group's commit before it answers 503. Its events may still
# be committed afterwards: a retry with the same x-inngest-event-id-seed then starts no second run.
WAIT_SECONDS = 60.0
MAX_GROUP_EVENTS = 5_000
# A connection that committed a group this recently is taken to be alive: Django's health check
# (CONN_HEALTH_CHECKS, a SELECT 1 before the first statement) would cost every group a round
# trip, on the way of every event to its run. An idle connection is still checked, and so is
# one whose last group failed.
FRESH_SECONDS = 1.0

log = logging.getLogger(__name__)


class CommitTimeout(Exception):
    """The group commit did not finish in time; the events may or may not be stored."""


@dataclass
class _Ticket:
    events: list[Event]
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


class GroupCommitter:
    def __init__(self, store: Callable[[list[Event]], None]) -> None:
        self._store = store
        self._ready = threading.Condition()
        self._queue: list[_Ticket] = []
        self._thread: threading.Thread | None = None
        self._is_stopping = False
        self._fresh_until = 0.0  # monotonic: until then the committer's connection needs no health check

    def submit(self, events: list[Event]) -> None:
        """Store `events` with whatever else is waiting; returns once they are committed."""
        ticket = _Ticket(events)
        with self._ready:
            self._queue.append(ticket)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._commit_forever, name="event-group-commit", daemon=True)
                self._thread.start()
            self._ready.notify()
        if not ticket.done.wait(WAIT_SECONDS):
            raise CommitTimeout(f"events were not committed within {WAIT_SECONDS:.0f}s")
        if ticket.error is not None:
            raise ticket.error

    def stop(self) -> None:
        """Finish what is queued, then end the thread (closing its database connection)."""
        with self._ready:
            self._is_stopping = True
            self._ready.notify()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _commit_forever(self) -> None:
        try:
            while True:
                with self._ready:
                    while not self._queue and not self._is_stopping:
                        self._ready.wait()
                    if not self._queue:
                        return
                    group = self._take_group()
                self._commit(group)
        finally:
            connection.close()

    def _take_group(self) -> list[_Ticket]:
        group, size = [], 0
        while self._queue and (not group or size + len(self._queue[0].events) <= MAX_GROUP_EVENTS):
            ticket = self._queue.pop(0)
            group.append(ticket)
            size += len(ticket.events)
        return group

    def _commit(self, group: list[_Ticket]) -> None:
        close_old_connections()  # this thread serves no request: drop a connection past its age or broken
        if time.monotonic() < self._fresh_until:
            connection.health_check_done = True
        try:
            self._store([event for ticket in group for event in ticket.events])
            self._fresh_until = time.monotonic() + FRESH_SECONDS
        except BaseException as exc:  # every request of the group answers with it; the thread goes on
            self._fresh_until = 0.0
            if len(group) > 1 and not isinstance(exc, (OperationalError, InterfaceError)):
                # Not the database going away but something in the data: commit each request on
                # its own, so that only the request it came from fails.
                log.warning("event group commit of %d requests failed (%s); committing them one by one", len(group), exc)
                for ticket in group:
                    self._commit([ticket])
                return
            log.warning("event group commit of %d requests failed: %s", len(group), exc)
            for ticket in group:
                ticket.error = exc
        finally:
            for ticket in group:
                ticket.done.set()


_committer: GroupCommitter | None = None
_committer_lock = threading.Lock()


def store_grouped(events: list[Event], store: Callable[[list[Event]], None]) -> None:
    """Store `events` with `store`, in a group commit with other requests of this process. A
    caller already inside a transaction stores in that transaction instead."""
    global _committer
    if not events:
        return
    if connection.in_atomic_block:
        store(events)
        return
    with _committer_lock:
        if _committer is None:
            _committer = GroupCommitter(store)
    _committer.submit(events)


def shutdown() -> None:
    """Stop this process's committer (tests, before their database is dropped)."""
    global _committer
    with _committer_lock:
        committer, _committer = _committer, None
    if committer is not None:
        committer.stop()
