"""An event's `meta` (protocol.md §1.4): what the server keeps of it and hands back to the SDKs.

Inngest keeps one thing in `meta` today: `sessions`, a map from a session key to a session id
that groups the runs an event starts. SDKs send it in two layers: `sessions`, set by the user,
and `propagated_sessions`, stamped by the SDK from the run that sent the event (step.sendEvent,
step.invoke, a send inside a run). The server folds the second into the first when it accepts
the event, the user's keys winning, so the stored event and every run started from it carry a
single `sessions` map and no `propagated_sessions`.

A user's key set to null cuts that inherited key; `sessions: null` cuts them all (JSON merge
patch, RFC 7386). Ids may be strings or numbers (kept as strings); anything else is refused.
"""
from __future__ import annotations

from typing import Any

MAX_SESSIONS = 5
MAX_SESSION_KEY_BYTES = 128
MAX_SESSION_ID_BYTES = 512


class EventMetaError(ValueError):
    pass


def resolve_meta(raw: Any) -> dict | None:
    """The meta to store for an event whose `meta` field is `raw`, or None when nothing is left.

    Raises EventMetaError saying what is wrong with it."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise EventMetaError("Event meta must be an object")
    manual, cut, cut_all = _manual_layer(raw.get("sessions", _ABSENT))
    inherited = {} if cut_all else _session_ids(raw.get("propagated_sessions"), "propagated session")
    for key in cut:
        inherited.pop(key, None)
    sessions = _merged(inherited, manual)
    _check_sessions(sessions)
    return {"sessions": sessions} if sessions else None


_ABSENT = object()


def _manual_layer(value: Any) -> tuple[dict[str, str], list[str], bool]:
    """The user's sessions, the inherited keys they cut, and whether they cut every one."""
    if value is _ABSENT:
        return {}, [], False
    if value is None:
        return {}, [], True
    if not isinstance(value, dict):
        raise EventMetaError("Event meta.sessions must be an object")
    cut = [key for key, session_id in value.items() if session_id is None]
    kept = {key: session_id for key, session_id in value.items() if session_id is not None}
    return _session_ids(kept, "session"), cut, False


def _session_ids(value: Any, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise EventMetaError(f"Event meta {what}s must be an object")
    ids: dict[str, str] = {}
    for key, session_id in value.items():
        # A boolean has two values: a label, not a session id.
        if isinstance(session_id, bool) or not isinstance(session_id, (str, int, float)):
            raise EventMetaError(f"Event {what} {key!r} must be a string or a number")
        ids[str(key)] = session_id if isinstance(session_id, str) else _number_text(session_id)
    return ids


def _number_text(number: int | float) -> str:
    return str(int(number)) if isinstance(number, float) and number.is_integer() else str(number)


def _merged(inherited: dict[str, str], manual: dict[str, str]) -> dict[str, str]:
    """The user's keys, then inherited ones in key order while there is room: the same subset on
    every retry and in every implementation."""
    merged = dict(manual)
    room = MAX_SESSIONS - len(merged)
    for key in sorted(k for k in inherited if k not in manual):
        if room <= 0:
            break
        merged[key] = inherited[key]
        room -= 1
    return merged


def _check_sessions(sessions: dict[str, str]) -> None:
    if len(sessions) > MAX_SESSIONS:
        raise EventMetaError(f"Event sessions can include at most {MAX_SESSIONS} entries")
    for key, session_id in sessions.items():
        if not key:
            raise EventMetaError("Event session keys cannot be empty")
        if len(key.encode()) > MAX_SESSION_KEY_BYTES:
            raise EventMetaError(f"Event session key {key!r} exceeds {MAX_SESSION_KEY_BYTES} bytes")
        if not session_id:
            raise EventMetaError(f"Event session {key!r} cannot have an empty ID")
        if len(session_id.encode()) > MAX_SESSION_ID_BYTES:
            raise EventMetaError(f"Event session {key!r} exceeds {MAX_SESSION_ID_BYTES} bytes")
