"""Keeping the leases of the calls this process is working on alive.

A call can take up to the call timeout (hours); a lease that long would leave a dead worker's
run stuck for hours. Instead the lease is short and a daemon thread renews it while the call
is in flight. When the process dies the renewals stop and the sweeper hands the call on.

Renewals also stop once a call has outlived its deadline (INNGEST_CALL_TIMEOUT_SECONDS, which
the transport enforces, plus one lease for recording the answer): a worker thread stuck for
any reason cannot hold a run forever. Its lease runs out, another worker takes the call, and
the stuck thread's answer, if it ever comes, fails the lease guard and is discarded.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from runs import pending_calls
from runs.flow_control.counters import Slot, counters

log = logging.getLogger(__name__)


def new_owner_token() -> str:
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


class LeaseKeeper:
    def __init__(self) -> None:
        self._held: dict[int, str] = {}
        self._renew_until: dict[int, float] = {}  # time.monotonic() after which renewals stop
        self._slots: dict[int, list[Slot]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def hold(self, call_id: int, owner: str, slots: list[Slot] | None = None) -> None:
        """Keep the call's lease, and the concurrency slots it holds, alive until `release`."""
        with self._lock:
            self._held[call_id] = owner
            self._renew_until[call_id] = _call_deadline()
            if slots:
                self._slots[call_id] = slots
        self._ensure_thread()

    def start_call(self, call_id: int) -> None:
        """A call to the app begins: its lease is kept until that call's deadline."""
        with self._lock:
            if call_id in self._held:
                self._renew_until[call_id] = _call_deadline()

    def release(self, call_id: int, owner: str) -> None:
        with self._lock:
            if self._held.get(call_id) != owner:
                return  # let go at its deadline, and held again since by another claim
            self._held.pop(call_id, None)
            self._renew_until.pop(call_id, None)
            self._slots.pop(call_id, None)

    def _due_for_renewal(self) -> tuple[list[tuple[int, str]], list[Slot]]:
        """The calls (and their slots) still within their deadline; the others are let go."""
        now = time.monotonic()
        with self._lock:
            overdue = [call_id for call_id, until in self._renew_until.items() if until < now]
            for call_id in overdue:
                log.warning("call %s outlived its deadline; its lease is left to run out", call_id)
                self._held.pop(call_id, None)
                self._renew_until.pop(call_id, None)
                self._slots.pop(call_id, None)
            held = list(self._held.items())
            slots = [slot for call_slots in self._slots.values() for slot in call_slots]
        return held, slots

    def _ensure_thread(self) -> None:
        # A forked Celery child inherits the object but not the thread: start one per process
        # (and one only, however many worker threads hold calls).
        with self._lock:
            if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
                return
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._renew_forever, name="lease-keeper", daemon=True)
            self._thread.start()

    def _renew_forever(self) -> None:
        interval = settings.INNGEST_LEASE_SECONDS / 3
        stop = threading.Event()
        while not stop.wait(interval):
            held, slots = self._due_for_renewal()
            if not held:
                continue
            try:
                now = timezone.now()
                expires = now + timedelta(seconds=settings.INNGEST_LEASE_SECONDS)
                pending_calls.renew_leases(held, expires)
                counters().renew(slots, int(now.timestamp() * 1000))
            except Exception:  # noqa: BLE001 - a database blip must not kill the renewing thread
                log.warning("renewing leases or slots failed; retrying in %.1fs", interval, exc_info=True)
                close_old_connections()


def _call_deadline() -> float:
    return time.monotonic() + settings.INNGEST_CALL_TIMEOUT_SECONDS + settings.INNGEST_LEASE_SECONDS


lease_keeper = LeaseKeeper()
