"""Resuming runs paused on `step.wait_for_event`: by a matching event, or by the timeout.

Whoever deletes the Wait row resumes the run: an event and the timeout racing for the same
wait resume it once. Resuming memoizes the step (the event, or null) and queues discovery.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from events.models import Event
from events.system import FINISHED
from functions.expression_failures import cancel_field, expression_holds, wait_field
from runs import pending_calls
from runs.due_rows import act_on_each
from runs.models import Run, RunStatus, Step, Wait, WaitKind
from runs.parallel import record_group_progress
from runs.wait_matching import candidate_filter, indexed_paths, indexed_value

EXPIRE_BATCH = 500
INVOKE_TIMEOUT_MESSAGE = "Timed out waiting for invoked function to complete"
_EVENT_KINDS = [WaitKind.EVENT, WaitKind.CANCEL]
_OPS = {WaitKind.EVENT: "WaitForEvent", WaitKind.INVOKE: "InvokeFunction", WaitKind.SLEEP: "Sleep",
        WaitKind.SIGNAL: "WaitForSignal"}


def awaited_sql(names: list[str]) -> tuple[str, dict[str, Any]]:
    """An SQL condition, true when a wait that an event of one of these names could end is open
    (the look-up resume_waiting_runs starts with), and its parameters (`wait_*`)."""
    params: dict[str, Any] = {f"wait_name{i}": name for i, name in enumerate(names)}
    params |= {f"wait_kind{i}": kind for i, kind in enumerate(_EVENT_KINDS)}
    names_in = ", ".join(f"%(wait_name{i})s" for i in range(len(names)))
    kinds_in = ", ".join(f"%(wait_kind{i})s" for i in range(len(_EVENT_KINDS)))
    return f"EXISTS (SELECT 1 FROM {Wait._meta.db_table} WHERE event_name IN ({names_in}) AND kind IN ({kinds_in}))", params


def resume_waiting_runs(events: list[Event]) -> int:
    """Resume the runs waiting for these events; called in the transaction that stores them."""
    names = {event.name for event in events}
    if not names:
        return 0
    open_names = set(
        Wait.objects.filter(event_name__in=names, kind__in=_EVENT_KINDS).values_list("event_name", flat=True).distinct()
    )
    resumed = sum(_resume_for_name(name, [e for e in events if e.name == name]) for name in open_names)
    return resumed + _resume_invokers(events)


def _resume_for_name(name: str, events: list[Event]) -> int:
    """One candidate query for all of a request's events of one name, then CEL on the candidates."""
    payloads = [event.as_payload() for event in events]
    paths = indexed_paths(name)
    condition = Q()
    for payload in payloads:
        condition |= candidate_filter(payload, paths)
    # Only waits that existed before these events: an event never satisfies a wait (or cancels
    # a run) that it caused itself.
    candidates = list(
        Wait.objects.filter(condition, event_name=name, kind__in=_EVENT_KINDS, expires_at__gt=timezone.now(),
                            created_at__lt=min(e.received_at for e in events)).select_related("run", "run__function")
    )
    resumed, done = 0, set()
    for payload in payloads:
        for wait in candidates:
            if wait.id not in done and _could_match(wait, payload) and _matches(wait, payload) and _act_on(wait, payload):
                done.add(wait.id)
                resumed += 1
    return resumed


def _could_match(wait: Wait, payload: dict) -> bool:
    return not wait.match_path or indexed_value(payload, wait.match_path) == wait.match_value


def _act_on(wait: Wait, payload: dict) -> bool:
    if wait.kind == WaitKind.CANCEL:
        # lifecycle applies decisions that open waits: import at call time to avoid the cycle.
        from runs.lifecycle import cancel_run

        return cancel_run(wait.run, by=f"event {payload.get('name', wait.event_name)} {payload.get('id', '')}".strip())
    return resume(wait, payload)


def _resume_invokers(events: list[Event]) -> int:
    """A child's function.finished resumes the parent waiting on its correlation id."""
    finished = {e.data.get("correlation_id"): e for e in events if e.name == FINISHED and e.data.get("correlation_id")}
    if not finished:
        return 0
    waits = Wait.objects.filter(kind=WaitKind.INVOKE, correlation_id__in=list(finished))
    return sum(1 for wait in waits if resume(wait, finished[wait.correlation_id].as_payload()))


def _matches(wait: Wait, incoming: dict) -> bool:
    """Whether the incoming event satisfies the wait's `if`; one that fails is recorded on the
    run's function and does not match (the wait stays open until its timeout)."""
    if not wait.expression:
        return True
    trigger = (wait.run.events or [{}])[0]
    field = wait_field(wait.step_name) if wait.kind == WaitKind.EVENT else cancel_field(wait.event_name)
    return expression_holds(wait.expression, wait.run.function_id, field, trigger, incoming)


def expire_waits(now: datetime | None = None) -> int:
    """Wake sleeps and time out waits that are due; returns how many runs were resumed."""
    now = now or timezone.now()
    Wait.objects.filter(kind=WaitKind.CANCEL, expires_at__lte=now).delete()  # nothing to resume
    with transaction.atomic():
        # SKIP LOCKED: two timer ticks (two beats started by mistake) never wake the same wait.
        due = Wait.objects.select_for_update(skip_locked=True).filter(
            kind__in=[WaitKind.EVENT, WaitKind.SLEEP, WaitKind.INVOKE, WaitKind.SIGNAL], expires_at__lte=now
        ).order_by("expires_at")
        return act_on_each(list(due[:EXPIRE_BATCH]), lambda wait: resume(wait, None), "expires_at", "expire_waits", now)


def memo_for(wait: Wait, event: dict | None) -> Any:
    """What the SDK gets for the wait's step: `event` is the resuming event, None on timeout."""
    if wait.kind in (WaitKind.EVENT, WaitKind.SLEEP):
        return event
    if wait.kind == WaitKind.SIGNAL:
        return None if event is None else {"data": event}  # {signal, data}, as Inngest memoizes it
    if event is None:
        return {"error": {"name": "InngestInvokeTimeoutError", "message": INVOKE_TIMEOUT_MESSAGE,
                          "error": f"InngestInvokeTimeoutError: {INVOKE_TIMEOUT_MESSAGE}"}}
    data = event.get("data") or {}
    if data.get("error") is not None:
        return {"error": data["error"]}
    return {"data": data.get("result")}


def resume(wait: Wait, event: dict | None) -> bool:
    """Memoize the wait's step and queue discovery, unless someone else resumed it first."""
    output = memo_for(wait, event)
    with transaction.atomic():
        deleted, _ = Wait.objects.filter(id=wait.id).delete()
        if not deleted:
            return False
        # The run's row lock orders this step among parallel steps finishing at the same time.
        if not Run.objects.select_for_update().filter(id=wait.run_id, status=RunStatus.RUNNING).exists():
            return False
        position = Step.objects.filter(run_id=wait.run_id).count()
        Step.objects.bulk_create(
            [Step(run_id=wait.run_id, step_id=wait.step_id, name=wait.step_name, op=_OPS[wait.kind], output=output,
                  position=position)],
            ignore_conflicts=True,
        )
        if record_group_progress(wait.run_id, [wait.step_id], is_sleep_end=wait.kind == WaitKind.SLEEP).may_discover:
            _queue_discovery(wait.run_id)
    return True


def _queue_discovery(run_id: str) -> None:
    pending_calls.add_discovery_call(run_id, timezone.now())
