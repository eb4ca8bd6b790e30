"""Deferred runs (`defer()` in JS v4, ops DeferAdd and DeferAbort): kept with the parent run while
it runs, told to the SDK on every call (`defers`), and started when the parent run ends, by one
`inngest/deferred.schedule` event each, which triggers the `createDefer` function named in it.
"""
from __future__ import annotations

import hashlib
import time

from django.db.models import Sum
from django.db.models.functions import Length
from ulid import ULID

from core.json_text import dump_json
from events.meta import EventMetaError, resolve_meta
from events.models import Event
from runs.decision_commands import AbortDefer, AddDefer
from runs.models import DeferStatus, Run, RunDefer

DEFERRED_SCHEDULE = "inngest/deferred.schedule"
MAX_DEFERS_PER_RUN = 20  # distinct defers of one run, as Inngest counts them
# All inputs of a run's defers together, kept apart from the run's state limit as Inngest does.
MAX_DEFER_INPUTS_BYTES = 4 * 1024 * 1024


def record_defers(run: Run, commands: list[AddDefer | AbortDefer]) -> None:
    """In the decision's transaction. Adding is insert-only, so an SDK repeating a DeferAdd
    (it does until it is told of it in `defers`) changes nothing."""
    for command in commands:
        if isinstance(command, AbortDefer):
            RunDefer.objects.filter(run=run, hashed_id=command.hashed_id, status=DeferStatus.AFTER_RUN).update(
                status=DeferStatus.ABORTED, input=None)
            continue
        known = list(RunDefer.objects.filter(run=run).values_list("hashed_id", flat=True))
        if command.hashed_id in known or len(known) >= MAX_DEFERS_PER_RUN:
            continue  # a repeat, or past the cap (Inngest drops those too: the parent never fails)
        is_rejected = command.is_rejected or _inputs_bytes(run) + len(dump_json(command.input)) > MAX_DEFER_INPUTS_BYTES
        RunDefer.objects.bulk_create([RunDefer(
            run=run, hashed_id=command.hashed_id, fn_slug=command.fn_slug, input=None if is_rejected else command.input,
            meta=command.meta, status=DeferStatus.REJECTED if is_rejected else DeferStatus.AFTER_RUN,
        )], ignore_conflicts=True)
        _mark_has_defers(run)


def _mark_has_defers(run: Run) -> None:
    """The run's flag, in the same transaction as its first defer: a run without it has none."""
    if not run.has_defers:
        Run.objects.filter(id=run.id).update(has_defers=True)
        run.has_defers = True


def _inputs_bytes(run: Run) -> int:
    rows = RunDefer.objects.filter(run=run, status=DeferStatus.AFTER_RUN)
    return rows.aggregate(total=Sum(Length("input")))["total"] or 0


def defers_for_call(run: Run) -> dict[str, dict[str, bool]]:
    """The `defers` of a call's body: the SDK must not report these again; only those still to
    start may be aborted. A flag read before another worker stored the run's first defer only
    makes the SDK report it again, which changes nothing."""
    if not run.has_defers:
        return {}
    rows = RunDefer.objects.filter(run_id=run.id).values_list("hashed_id", "status")
    return {hashed_id: {"abortable": status == DeferStatus.AFTER_RUN} for hashed_id, status in rows}


def deferred_schedule_events(run: Run) -> list[Event]:
    """One event per defer still to start, for a run that just ended (`run.has_defers` as the
    database has it when it ended). Its id derives from the run and the defer, so the event is
    the same whoever builds it and starts one run. The defer's sessions (the parent's, which the
    SDK passes on, and its own) are the event's `meta`; a defer whose sessions cannot be kept
    starts nothing, as Inngest drops it (the parent never fails)."""
    if not run.has_defers:
        return []
    function = run.function
    rows = RunDefer.objects.filter(run=run, status=DeferStatus.AFTER_RUN).order_by("id")
    events = []
    for defer in rows:
        try:
            meta = resolve_meta(defer.meta)
        except EventMetaError:
            continue
        data = dict(defer.input) if isinstance(defer.input, dict) else {}
        data["_inngest"] = {
            "fn_slug": defer.fn_slug, "parent_app_id": str(function.app_id), "parent_fn_id": str(function.id),
            "parent_fn_slug": function.slug, "parent_run_id": run.id,
        }
        event_id = str(_defer_event_id(run.id, defer.hashed_id))
        events.append(Event(internal_id=str(ULID()), name=DEFERRED_SCHEDULE, event_id=event_id, data=data, user={},
                            meta=meta, ts=int(time.time() * 1000)))
    return events


def _defer_event_id(run_id: str, hashed_id: str) -> ULID:
    """The parent's time and a digest of (run, defer): deterministic, and a valid ULID."""
    seed = hashlib.sha256(f"defer-event:{run_id}:{hashed_id}".encode()).digest()
    return ULID.from_bytes(ULID.from_str(run_id).bytes[:6] + seed[:10])
