"""The rows the timer tick acts on (due timeouts, waits, debounces, batches), one at a time.

One bad row must not hold up the others. Each row is acted on in a savepoint of the tick's
transaction; a row whose action raises is rolled back to how it was, logged and counted, and
its due time is moved out by RETRY_AFTER, so that the next ticks do not take it first again and
again: the rows behind it go on. The row itself stays, and is tried again then (a Redis blip
heals; a bug shows in the log and in `inngest_timer_errors` until it is fixed).
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable

from django.db import transaction

from core import metrics

RETRY_AFTER = timedelta(seconds=30)

log = logging.getLogger(__name__)


def act_on_each(rows: Iterable[Any], act: Callable[[Any], Any], due_field: str, part: str, now: datetime) -> int:
    """`act(row)` for every row, each in a savepoint; returns how many acts returned a true value."""
    done = 0
    for row in rows:
        try:
            with transaction.atomic():
                done += bool(act(row))
        except Exception:  # noqa: BLE001 - the row is rolled back and postponed; the others go on
            log.exception("timer tick: %s: %s %s failed; tried again in %ds",
                          part, type(row).__name__, row.pk, RETRY_AFTER.total_seconds())
            metrics.count("inngest_timer_errors", part)
            type(row).objects.filter(pk=row.pk).update(**{due_field: now + RETRY_AFTER})
    return done
