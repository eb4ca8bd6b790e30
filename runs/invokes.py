"""`step.invoke` and `POST /invoke/{slug}`: starting another function's run directly (§4.8, §5.4).

The child starts from an `inngest/function.invoked` event, not through triggers. The parent
waits (a Wait of kind invoke) for the child's `inngest/function.finished`, matched by the
correlation id "<parent run>.<step>" that the finished event carries.
"""
from __future__ import annotations

import time
import uuid
from typing import Any

from ulid import ULID

from events.meta import resolve_meta
from events.models import Event
from events.system import FINISHED, INVOKED
from functions.models import Function
from runs.creation import RunRequest, create_runs
from runs.models import Run, Wait, WaitKind
from runs.waits import resume


def find_function(function_id: str) -> Function | None:
    """The active function with this slug (composite id) or internal UUID."""
    query = Function.objects.filter(is_archived=False)
    found = query.filter(slug=function_id).first()
    if found is None:
        try:
            found = query.filter(id=uuid.UUID(function_id)).first()
        except ValueError:
            return None
    return found


def invoke_function(function: Function, payload: dict, correlation_id: str = "") -> Event:
    """Store the invoked event and start the function's run from it. The payload's `meta` has
    been checked (executor/decision.py, the /invoke view); its sessions ride along."""
    data = dict(payload.get("data") or {}) if isinstance(payload.get("data"), dict) else {}
    meta: dict[str, Any] = {"fn_id": function.slug}
    if correlation_id:
        meta["correlation_id"] = correlation_id
    data["_inngest"] = meta
    internal_id = str(ULID())
    user_id = payload.get("id") if isinstance(payload.get("id"), str) else ""
    event = Event.objects.create(
        internal_id=internal_id, name=INVOKED, event_id=user_id or internal_id, data=data,
        user=payload.get("user") if isinstance(payload.get("user"), dict) else {},
        ts=int(time.time() * 1000), v=str(payload.get("v") or ""), meta=resolve_meta(payload.get("meta")),
    )
    create_runs([RunRequest(function, event, [event.as_payload()], event.event_id)])
    return event


def start_invoked_run(parent: Run, invoke: Any) -> None:
    """The parent's side of step.invoke: a wait for the child's end, then the child itself."""
    correlation_id = f"{parent.id}.{invoke.step_id}"
    wait = Wait.objects.create(
        run=parent, kind=WaitKind.INVOKE, step_id=invoke.step_id, step_name=invoke.name[:255], event_name=FINISHED,
        correlation_id=correlation_id, expires_at=invoke.expires_at,
    )
    target = find_function(invoke.function_id)
    if target is None:
        # Inngest answers a missing target with a failed finish, so the caller fails instead of hanging.
        error = {"name": "Error", "message": f"could not find function {invoke.function_id!r} to invoke"}
        resume(wait, {"name": FINISHED, "data": {"error": error, "correlation_id": correlation_id}})
        return
    invoke_function(target, invoke.payload, correlation_id)
