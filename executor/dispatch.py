"""Getting pending calls to workers: a broker message after commit, and the sweeper as the backstop.

The PendingCall row is the record; a message only says "look at call N". Messages are sent
only after the transaction that wrote the row commits, and the sweeper re-sends for rows whose
message was lost (broker restarted without its data) or whose worker died holding the lease.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import Q
from django.utils import timezone

from core import metrics
from inngest_project.celery import app as celery_app

EXECUTE_CALL_TASK = "executor.execute_call"
TICK_TASK = "executor.sweep_due_calls"
# Countdowns longer than this are left to the sweeper: a message held for hours by a worker
# is more fragile than a row.
MAX_COUNTDOWN_SECONDS = 60.0
SWEEP_BATCH = 500

log = logging.getLogger(__name__)


def lost_message_after() -> timedelta:
    """A message sent this long ago for a call that is still unclaimed is presumed lost."""
    return timedelta(seconds=settings.INNGEST_LOST_MESSAGE_SECONDS)


def enqueue_calls_on_commit(call_ids: list[int], due_at: datetime | None = None) -> None:
    if not call_ids:
        return
    countdown = 0.0
    if due_at is not None:
        countdown = (due_at - timezone.now()).total_seconds()
        if countdown > MAX_COUNTDOWN_SECONDS:
            return  # the sweeper sends it when it is due
    transaction.on_commit(lambda: send_calls(call_ids, max(countdown, 0.0)))


def tick_at_on_commit(due_at: datetime) -> None:
    """Ask for a timer tick when a sleep or wait comes due, rather than at the next beat second.

    The row stays the record: if this message is lost, the regular tick still finds it.
    """
    countdown = (due_at - timezone.now()).total_seconds()
    if countdown <= MAX_COUNTDOWN_SECONDS:
        transaction.on_commit(lambda: celery_app.send_task(TICK_TASK, countdown=max(countdown, 0.0) or None))


def send_calls(call_ids: list[int], countdown: float = 0.0) -> None:
    for call_id in call_ids:
        celery_app.send_task(EXECUTE_CALL_TASK, args=(call_id,), countdown=countdown or None)


def unsent_due_calls(now: datetime) -> Q:
    """Due calls with no message known to be in flight: the lease ran out (the worker died), or
    the message was never sent or sent so long ago that it is presumed lost."""
    stale = now - lost_message_after()
    return Q(due_at__lte=now) & (
        Q(lease_expires_at__lt=now) | (Q(lease_expires_at__isnull=True) & (Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=stale)))
    )


def resend_calls(call_ids: list[int], now: datetime) -> None:
    """Send these calls again. Marking them first keeps the next tick from sending them twice;
    an expired lease is cleared, so a worker that was only slow loses its guard and stops."""
    from runs.models import PendingCall  # runs imports this module; import late to avoid a cycle

    PendingCall.objects.filter(id__in=call_ids).update(enqueued_at=now, lease_owner="", lease_expires_at=None)
    send_calls(call_ids)


def sweep_due_calls(now: datetime | None = None) -> int:
    """Send a message for every due call that has none in flight. Returns how many were sent."""
    from runs.models import PendingCall  # runs imports this module; import late to avoid a cycle

    now = now or timezone.now()
    call_ids = list(PendingCall.objects.filter(unsent_due_calls(now)).order_by("due_at").values_list("id", flat=True)[:SWEEP_BATCH])
    if not call_ids:
        return 0
    resend_calls(call_ids, now)
    log.info("sweeper sent %d due calls", len(call_ids))
    return len(call_ids)


def tick(now: datetime | None = None) -> None:
    """One timer tick (beat in production, the timer loop in dev): cancel runs past their
    timeouts, wake sleeps, time out waits, start debounced and batched runs, send due calls."""
    # runs imports this module; import late to avoid a cycle.
    from runs.batches import start_due_batches
    from runs.cancellations import expire_timeouts
    from runs.debounces import start_due_debounces
    from runs.waits import expire_waits

    now = now or timezone.now()
    for part in (expire_timeouts, expire_waits, start_due_debounces, start_due_batches, sweep_due_calls):
        try:
            part(now)
        except Exception:  # noqa: BLE001 - whatever breaks one part (a lock timeout, Redis, a bug) must not stop the others
            log.exception("timer tick: %s failed", part.__name__)
            metrics.count("inngest_timer_errors", part.__name__)
            if not connection.in_atomic_block:
                close_old_connections()  # a connection the database dropped: the next part reconnects
