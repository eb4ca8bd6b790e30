"""Events the server itself emits when a run ends (protocol.md §5.1–§5.3).

`inngest/function.finished` for every ended run, plus `inngest/function.failed` or
`inngest/function.cancelled`. They are stored and matched to triggers like any event, so the
`<fn>-failure` functions the SDKs register for `on_failure` handlers run from them.
"""
from __future__ import annotations

import time
from typing import Any

from ulid import ULID

from events.models import Event

FINISHED = "inngest/function.finished"
INVOKED = "inngest/function.invoked"
FAILED = "inngest/function.failed"
CANCELLED = "inngest/function.cancelled"
# A run started by one of these emits none itself: no handler of a handler's end.
_NO_ECHO = {FINISHED, FAILED}
_REST_STATUS = {"completed": "Completed", "failed": "Failed", "cancelled": "Cancelled", "skipped": "Skipped"}


def run_ended_events(run_id: str, function_slug: str, events: list[dict], status: str, output: Any) -> list[Event]:
    """The rows to store for a run that just ended with `status` and `output`."""
    if events and events[0].get("name") in _NO_ECHO:
        return []
    data: dict[str, Any] = {
        "function_id": function_slug,
        "run_id": run_id,
        "event": events[0] if events else {},
        "events": events,
        "_inngest": {"status": _REST_STATUS[status]},
    }
    correlation_id = _correlation_of(events)
    if correlation_id:
        data["correlation_id"] = correlation_id  # the invoking parent waits for this
    if status == "completed":
        data["result"] = output
    elif status in ("failed", "skipped"):  # a skipped invoked run fails its caller's step
        data["error"] = _error_of(output)
        data["result"] = output  # Inngest also passes the raw error body as the result
    rows = [_event(FINISHED, str(ULID()), data)]
    rows[0].has_unique_id = True
    if status == "failed":
        rows.append(_event(FAILED, run_id, data))  # the run id as the event id dedupes repeats
    elif status == "cancelled":
        rows.append(_event(CANCELLED, run_id, data))
    return rows


def _correlation_of(events: list[dict]) -> str:
    if not events or events[0].get("name") != INVOKED:
        return ""
    meta = (events[0].get("data") or {}).get("_inngest") or {}
    return str(meta.get("correlation_id") or "")


def _error_of(output: Any) -> dict[str, Any]:
    if not isinstance(output, dict):
        return {"error": str(output), "name": "Error", "message": str(output)}
    name = str(output.get("name") or "Error")
    message = str(output.get("message") or output.get("error") or "")
    error = {"error": f"{name}: {message}" if message else name, "name": name, "message": message}
    if output.get("stack") is not None:
        error["stack"] = output["stack"]
    return error


def _event(name: str, event_id: str, data: dict[str, Any]) -> Event:
    internal_id = str(ULID())
    return Event(internal_id=internal_id, name=name, event_id=event_id, data=data, user={}, ts=int(time.time() * 1000))
