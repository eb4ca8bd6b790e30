"""Group commit for event ingestion: concurrent requests of one process share one transaction.

A request hands its validated events to the process's committer and waits: a request thread
blocks (`submit`); the ASGI route's event loop, for a small body it validated itself
(inngest_project/event_route.py), awaits a future (`submit_nowait`). The committer thread stores
everything handed to it since its previous commit in one transaction (a small group often in one
statement, runs/intake.py; otherwise one insert, one trigger lookup, one wait lookup for the
whole group), then resolves the future of every request of the group.
Nothing is acknowledged before its commit. A commit that fails because of one request's data is
retried request by request, so only that request fails; one that fails because the database is
unreachable fails every request of its group, none of whose events were stored. One request
alone is committed at once: there is no timer, only the requests that arrived while the previous
commit was running.
"""
from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import Future, InvalidStateError
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Callable

from django.db import InterfaceError, OperationalError, close_old_connections, connection

from events.models import Event

# A request waits this long for its group's commit before it answers 503. Its events may still
# be committed afterwards: a retry with the same x-inngest-event-id-seed then starts no second run.
WAIT_SECONDS = 60.0
MAX_GROUP_EVENTS = 5_000

log = logging.getLogger(__name__)


class CommitTimeout(Exception):
    """The group commit did not finish in time; the events may or may not be stored."""


@dataclass
class _Ticket:
    events: list[Event]
    # Resolved by the committer thread: None once committed, or the exception the commit raised.
    committed: Future[None] = field(default_factory=Future)


class GroupCommitter:
    def __init__(self, store: Callable[[list[Event]], None]) -> None:
        self._store = store
        self._ready = threading.Condition()
        self._queue: list[_Ticket] = []
        self._thread: threading.Thread | None = None
        self._is_stopping = False

    def submit(self, events: list[Event]) -> None:
        """Store `events` with whatever else is waiting; returns once they are committed."""
        committed = self.submit_nowait(events)
        try:
            committed.result(WAIT_SECONDS)
        except FutureTimeout:
            raise CommitTimeout(_too_late()) from None

    def submit_nowait(self, events: list[Event]) -> Future[None]:
        """Queue `events` for the next group and return at once: the future is resolved when they
        are committed (or fail to be). Holds the queue's lock only to append, never across a commit,
        so an event loop may call it."""
        ticket = _Ticket(events)
        with self._ready:
            self._queue.append(ticket)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._commit_forever, name="event-group-commit", daemon=True)
                self._thread.start()
            self._ready.notify()
        return ticket.committed

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
        # Whatever happens below, every ticket of the group is resolved with this (None: committed).
        outcome: BaseException | None = RuntimeError("the group commit ended without an outcome")
        try:
            # This thread serves no request: drop a connection past its age or broken, as Django
            # does at a request's start (one that committed a moment ago goes without a SELECT 1
            # first: core/postgresql/base.py).
            close_old_connections()
            self._store([event for ticket in group for event in ticket.events])
            outcome = None
        except BaseException as exc:  # every request of the group answers with it; the thread goes on
            outcome = exc
            if len(group) > 1 and not isinstance(exc, (OperationalError, InterfaceError)):
                # Not the database going away but something in the data: commit each request on
                # its own, so that only the request it came from fails.
                log.warning("event group commit of %d requests failed (%s); committing them one by one", len(group), exc)
                for ticket in group:
                    self._commit([ticket])
                return
            log.warning("event group commit of %d requests failed: %s", len(group), exc)
        finally:
            for ticket in group:
                _resolve(ticket.committed, outcome)


def _resolve(committed: Future[None], outcome: BaseException | None) -> None:
    # A ticket retried on its own was resolved by that retry; one whose awaiting request gave up
    # (CommitTimeout) was cancelled: either way its request has its answer already.
    if committed.done():
        return
    try:
        if outcome is None:
            committed.set_result(None)
        else:
            committed.set_exception(outcome)
    except InvalidStateError:  # cancelled between the check and here
        pass


def _too_late() -> str:
    return f"events were not committed within {WAIT_SECONDS:.0f}s"


_committer: GroupCommitter | None = None
_committer_lock = threading.Lock()


def store_grouped(events: list[Event], store: Callable[[list[Event]], None]) -> None:
    """Store `events` with `store`, in a group commit with other requests of this process. A
    caller already inside a transaction stores in that transaction instead."""
    if not events:
        return
    if connection.in_atomic_block:
        store(events)
        return
    _the_committer(store).submit(events)


async def store_grouped_awaiting(events: list[Event], store: Callable[[list[Event]], None]) -> None:
    """`store_grouped` for a coroutine on an event loop: queues `events` without blocking and
    awaits their commit, with the same limit (CommitTimeout). A loop holds no transaction, so
    there is none to store in."""
    if not events:
        return
    committed = _the_committer(store).submit_nowait(events)
    try:
        # On time-out wait_for cancels the future: the committer may still store the events.
        await asyncio.wait_for(asyncio.wrap_future(committed), WAIT_SECONDS)
    except asyncio.TimeoutError:
        raise CommitTimeout(_too_late()) from None


def _the_committer(store: Callable[[list[Event]], None]) -> GroupCommitter:
    global _committer
    with _committer_lock:
        if _committer is None:
            _committer = GroupCommitter(store)
        return _committer


def shutdown() -> None:
    """Stop this process's committer (tests, before their database is dropped)."""
    global _committer
    with _committer_lock:
        committer, _committer = _committer, None
    if committer is not None:
        committer.stop()
