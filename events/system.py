"""Events the server itself emits when a run ends (protocol.md §5.1–§5.3).

`inngest/function.finished` for every ended run, plus `inngest/function.failed` or
`inngest/function.cancelled`. They are stored and matched to triggers like any event, so the
`<fn>-failure` functions the SDKs register for `on_failure` handlers run from them.
"""
from __future__ import annotations

import json
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
DEFAULT_ERROR_MESSAGE = "Function execution error"  # Inngest's, when nothing better is known
MAX_WRAPPED_ERROR_CHARS = 32 * 1024  # an error wrapped as JSON text is read up to this size, as Inngest's
_REST_STATUS = {"completed": "Completed", "failed": "Failed", "cancelled": "Cancelled", "skipped": "Skipped"}


def run_ended_events(
    run_id: str, function_slug: str, events: list[dict], status: str, output: Any, reason: str = ""
) -> list[Event]:
    """The rows to store for a run that just ended with `status` and `output`; `reason` is why
    its last call failed, as Inngest's driver words it."""
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
        data["error"] = failure_error(output, reason)
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


def failure_error(output: Any, reason: str = "") -> dict[str, Any]:
    """A failed run's error as Inngest's function.finished/failed events carry it: `error`,
    `name`, `message`, `stack` and `cause` read from the error body the app answered with (or
    from its `error` / `body` object), `error` and `message` falling back to `reason`, the
    call's failure as the driver words it ("invalid status code: 500")."""
    fields = _error_fields(output)
    error: dict[str, Any] = {"error": DEFAULT_ERROR_MESSAGE, "name": "Error", "message": DEFAULT_ERROR_MESSAGE}
    for key in ("error", "name", "message", "stack"):
        if isinstance(fields.get(key), str) and fields[key]:
            error[key] = fields[key]
    if "cause" in fields:
        error["cause"] = fields["cause"]
    reason = reason or (error["message"] if error["message"] != DEFAULT_ERROR_MESSAGE else "")
    for key in ("error", "message"):
        if reason and error[key] == DEFAULT_ERROR_MESSAGE:
            error[key] = reason
    return error


def _error_fields(output: Any) -> dict[str, Any]:
    if not isinstance(output, dict):
        return {"message": output} if output not in (None, "") else {}
    for key in ("error", "body"):  # an error wrapped by the SDK or by a proxy in front of it
        value = output.get(key)
        if isinstance(value, str):
            value = _json_object(value)
        if isinstance(value, dict):
            return value
    return output


def _json_object(text: str) -> dict | None:
    if len(text) > MAX_WRAPPED_ERROR_CHARS:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _event(name: str, event_id: str, data: dict[str, Any]) -> Event:
    internal_id = str(ULID())
    return Event(internal_id=internal_id, name=name, event_id=event_id, data=data, user={}, ts=int(time.time() * 1000))
