"""A function's expressions evaluated for the runtime: a failure is no match, counted and shown.

An expression that cannot be evaluated (a type error, a missing function, the evaluation budget,
anything celpy or Python raises) is no match for a trigger or an `if`, and an invalid key for a
key: the event, the wait or the call goes on without it and nothing else is affected. Each
failure is counted on an ExpressionFailure row per (function, field), which the functions pages
and /metrics show, and logged once per LOG_EVERY_SECONDS per field and process, not per event.

Rows are written after the evaluating transaction commits, not inside it: ingestion evaluates
triggers inside the transaction that stores the events, where a row written would stay locked
until that commit, queueing concurrent requests behind one function's row (and deadlocking two
requests that touch two such rows in opposite orders). Failures wait in this process's memory
until then; when that transaction rolls back they are written after the next commit that has
failures.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from core.expressions import ExpressionError, compile_expression, quoted
from functions.models import ExpressionFailure, Function

log = logging.getLogger(__name__)

LOG_EVERY_SECONDS = 300.0
MAX_FIELD_LENGTH = 255
MAX_MESSAGE_LENGTH = 1000
MAX_LOGGED_KEYS = 10_000


@dataclass
class _Pending:
    count: int
    message: str
    expression: str
    first_at: datetime
    last_at: datetime


_lock = threading.Lock()
_pending: dict[tuple[str, str], _Pending] = {}
_logged_at: dict[tuple[str, str], float] = {}


def trigger_field(event_name: str) -> str:
    """How sync errors and failures name a trigger's expression."""
    return f'trigger "{event_name}" expression'


def cancel_field(event_name: str) -> str:
    return f'cancel "{event_name}" if'


def wait_field(step_name: str) -> str:
    return f'waitForEvent "{step_name}" if'


def expression_holds(source: str, function_id: Any, field: str, event: dict, async_event: dict | None = None) -> bool:
    """Whether the expression is true for the event; a failure is recorded and is false."""
    try:
        return compile_expression(source).is_true(event, async_event)
    except ExpressionError as exc:
        record_failure(function_id, field, source, exc)
        return False


def expression_value(source: str, function_id: Any, field: str, event: dict, fallback: Any) -> Any:
    """The expression's value for the event; a failure is recorded and gives `fallback`."""
    try:
        return compile_expression(source).evaluate(event)
    except ExpressionError as exc:
        record_failure(function_id, field, source, exc)
        return fallback


def record_failure(function_id: Any, field: str, source: str, error: Exception) -> None:
    """Count a failure of the function's expression at `field`; written once the caller commits.
    No function (None): a value computed again for a message, already recorded."""
    if function_id is None:
        return
    key = (str(function_id), field[:MAX_FIELD_LENGTH])
    message, now = str(error)[:MAX_MESSAGE_LENGTH], timezone.now()
    with _lock:
        pending = _pending.get(key)
        if pending is None:
            _pending[key] = _Pending(1, message, quoted(source), now, now)
        else:
            pending.count, pending.message, pending.last_at = pending.count + 1, message, now
        is_logged = time.monotonic() - _logged_at.get(key, -math.inf) >= LOG_EVERY_SECONDS
        if is_logged:
            if len(_logged_at) >= MAX_LOGGED_KEYS:
                _logged_at.clear()  # a bound on memory; at worst a few more lines logged
            _logged_at[key] = time.monotonic()
    if is_logged:
        slug = Function.objects.filter(id=function_id).values_list("slug", flat=True).first() or key[0]
        log.warning("function %s: its %s cannot be evaluated; taken as no match (an invalid key for a key): %s "
                    "(logged once per %d s per expression; counted on the function's page and in /metrics)",
                    slug, key[1], message, LOG_EVERY_SECONDS)
    # One callback per failure: flushing finds nothing left after the first, and registering it
    # again is what makes failures recorded in a rolled-back transaction reach a later commit.
    transaction.on_commit(flush_failures, robust=True)


def flush_failures() -> None:
    """Write the failures this process has counted."""
    with _lock:
        batch = dict(_pending)
        _pending.clear()
    for (function_id, field), pending in batch.items():
        try:
            _write(function_id, field, pending)
        except Exception:  # noqa: BLE001 - a lost count must not fail the commit it follows, nor the other counts
            log.warning("could not record %d expression failures of function %s", pending.count, function_id, exc_info=True)


def _write(function_id: str, field: str, pending: _Pending) -> None:
    changes = {"count": F("count") + pending.count, "message": pending.message, "expression": pending.expression,
               "last_at": pending.last_at}
    if ExpressionFailure.objects.filter(function_id=function_id, field=field).update(**changes):
        return
    try:
        with transaction.atomic():
            ExpressionFailure.objects.create(
                function_id=function_id, field=field, count=pending.count, message=pending.message,
                expression=pending.expression, first_at=pending.first_at, last_at=pending.last_at,
            )
    except IntegrityError:
        # Another process created the row meanwhile (or the function is gone: nothing to update).
        ExpressionFailure.objects.filter(function_id=function_id, field=field).update(**changes)


def forget_failures(function_id: Any) -> None:
    """A function's config changed: its recorded failures are about expressions it no longer has."""
    ExpressionFailure.objects.filter(function_id=function_id).delete()
