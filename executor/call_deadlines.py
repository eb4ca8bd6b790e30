"""A total deadline for each request the server makes for a step (executor/gateway.py: step.fetch,
step.ai.infer): connecting, sending, and reading the whole answer. (Calls to apps have libcurl's
own, executor/app_http.py.)

urllib3's timeouts apply to each socket operation, so a host that sends a byte every few
seconds never trips them and holds a worker for as long as it likes. Here every request registers
the sockets it uses, and one watchdog thread per process shuts them down when the request's
deadline passes: the read blocked on them fails at once, and a timeout is recorded.
"""
from __future__ import annotations

import math
import os
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool


@dataclass(eq=False)
class CallDeadline:
    expires_at: float  # time.monotonic()
    sockets: list[socket.socket] = field(default_factory=list)
    has_expired: bool = False


class Watchdog:
    """Shuts the sockets of calls past their deadline; one thread, woken only when needed."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._active: set[CallDeadline] = set()
        self._next_wake = math.inf
        self._local = threading.local()
        self._thread: threading.Thread | None = None
        self._pid = 0

    @contextmanager
    def watch(self, seconds: float) -> Iterator[CallDeadline]:
        """The deadline of the call made inside the block, by this thread."""
        deadline = CallDeadline(time.monotonic() + seconds)
        self._ensure_thread()
        with self._cond:
            self._active.add(deadline)
            if deadline.expires_at < self._next_wake:
                self._cond.notify()
        self._local.deadline = deadline
        try:
            yield deadline
        finally:
            self._local.deadline = None
            # Under the lock: once this returns, the watchdog never touches these sockets, which
            # may go back to the pool and serve another call.
            with self._cond:
                self._active.discard(deadline)

    def adopt(self, sock: socket.socket | None) -> None:
        """Put a socket the current call uses under its deadline."""
        deadline: CallDeadline | None = getattr(self._local, "deadline", None)
        if deadline is None or sock is None:
            return
        with self._cond:
            if deadline.has_expired:
                _shut(sock)
            elif sock not in deadline.sockets:
                deadline.sockets.append(sock)

    def _ensure_thread(self) -> None:
        # A forked Celery child inherits the object but not the thread: one thread per process.
        if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
            return
        with self._cond:
            if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
                return
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name="call-deadlines", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                for deadline in [d for d in self._active if d.expires_at <= now]:
                    deadline.has_expired = True
                    self._active.discard(deadline)
                    for sock in deadline.sockets:
                        _shut(sock)
                self._next_wake = min((d.expires_at for d in self._active), default=math.inf)
                self._cond.wait(None if self._next_wake == math.inf else self._next_wake - now)


def _shut(sock: socket.socket) -> None:
    try:
        # socket.socket's own shutdown, also for TLS sockets: SSLSocket.shutdown would unwrap the
        # TLS object under the reading thread's feet; shutting the descriptor just ends its read.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass  # already closed


watchdog = Watchdog()


class _Watched:
    """A connection whose socket is put under the deadline of the call using it."""

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        watchdog.adopt(self.sock)  # type: ignore[attr-defined]

    def request(self, *args: Any, **kwargs: Any) -> None:
        watchdog.adopt(self.sock)  # type: ignore[attr-defined]  # a kept-alive connection
        super().request(*args, **kwargs)  # type: ignore[misc]


class _WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


def watched_pool(scheme: str, host: str, port: int, **kwargs: Any) -> HTTPConnectionPool:
    """One connection pool to `host` (an address) whose connections obey `watchdog.watch()`."""
    pool_class = _HTTPSPool if scheme == "https" else _HTTPPool
    return pool_class(host, port, **kwargs)
