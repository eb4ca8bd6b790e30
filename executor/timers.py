"""The timer tick (beat in production, the timer loop of `manage.py dev`): everything that comes
due by the clock rather than by an answer from an app."""
from __future__ import annotations

import logging
from datetime import datetime

from django.db import close_old_connections, connection
from django.utils import timezone

from core import metrics
from runs.cancellations import expire_timeouts
from runs.flow_control.batches import start_due_batches
from runs.flow_control.debounces import start_due_debounces
from runs.pending_calls import resend_unsent_calls
from runs.waits import expire_waits

log = logging.getLogger(__name__)


def tick_timers(now: datetime | None = None) -> None:
    """One tick: cancel runs past their timeouts, wake sleeps, time out waits, start debounced
    and batched runs, send due calls that have no message in flight."""
    now = now or timezone.now()
    for part in (expire_timeouts, expire_waits, start_due_debounces, start_due_batches, resend_unsent_calls):
        try:
            part(now)
        except Exception:  # noqa: BLE001 - whatever breaks one part (a lock timeout, Redis, a bug) must not stop the others
            log.exception("timer tick: %s failed", part.__name__)
            metrics.count("inngest_timer_errors", part.__name__)
            if not connection.in_atomic_block:
                close_old_connections()  # a connection the database dropped: the next part reconnects
