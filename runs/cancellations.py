"""Bulk cancellation (`POST /v1/cancellations`, protocol.md §1.10) and function timeouts (§4.7)."""
from __future__ import annotations

from datetime import datetime, timedelta
from django.db import transaction
from django.utils import timezone
from ulid import ULID

from core.expressions import ExpressionError, compile_expression
from functions.expression_failures import expression_holds
from functions.models import Function
from runs.due_rows import act_on_each
from runs.lifecycle import cancel_run
from runs.models import ACTIVE_STATUSES, Cancellation, Run, Wait, WaitKind

MAX_BULK = 10_000
BULK_FIELD = "bulk cancellation if"


class CancellationError(ValueError):
    pass


def cancel_runs(app_id: str, function: Function, started_before: datetime, started_after: datetime | None,
                expression: str) -> Cancellation:
    """Cancel the function's active runs created in the window whose event satisfies `expression`."""
    if started_before > timezone.now() + timedelta(seconds=5):
        raise CancellationError("started_before must not be in the future")
    compiled = None
    if expression:
        try:
            compiled = compile_expression(expression)
        except ExpressionError as exc:
            raise CancellationError(str(exc)) from None
    runs = Run.objects.filter(function=function, status__in=ACTIVE_STATUSES, created_at__lt=started_before)
    if started_after:
        runs = runs.filter(created_at__gt=started_after)
    count = 0
    for run in runs.select_related("function")[:MAX_BULK]:
        if compiled is None or expression_holds(expression, function.id, BULK_FIELD, (run.events or [{}])[0]):
            count += cancel_run(run)
    return Cancellation.objects.create(
        id=str(ULID()), app_id=app_id, function=function, started_after=started_after, started_before=started_before,
        expression=expression, cancelled_count=count,
    )


def expire_timeouts(now: datetime) -> int:
    """Cancel the runs whose start or finish timeout is due."""
    with transaction.atomic():
        due = Wait.objects.select_for_update(skip_locked=True).filter(kind=WaitKind.TIMEOUT, expires_at__lte=now)
        return act_on_each(list(due.select_related("run", "run__function")[:500]), _cancel_for_timeout,
                           "expires_at", "expire_timeouts", now)


def _cancel_for_timeout(wait: Wait) -> bool:
    cancelled = cancel_run(wait.run)
    wait.delete()
    return cancelled
