"""Finding the waits an incoming event may satisfy without evaluating every open wait.

Most wait conditions compare one field of the run's event with one field of the incoming
event (`event.data.order == async.data.order`). For those, the run's side is a constant once
the wait opens, so the wait is stored with the incoming field's path and the value it must
have, and ingestion finds candidates with an indexed equality lookup. Any other condition
is evaluated as CEL against each open wait of that event name.
"""
from __future__ import annotations

import json
import re
from typing import Any

from django.db.models import Q

from runs.models import Wait

_PATH = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
_EQUALITY = re.compile(rf"^\s*(event|async)\.({_PATH})\s*==\s*(event|async)\.({_PATH})\s*$")
MAX_VALUE_LENGTH = 255


def equality_key(expression: str, trigger_event: dict) -> tuple[str, str]:
    """(async path, JSON value) for an `event.a == async.b` condition, else ("", "")."""
    match = _EQUALITY.match(expression or "")
    if not match or match.group(1) == match.group(3):
        return "", ""
    event_path, async_path = (match.group(2), match.group(4)) if match.group(1) == "event" else (match.group(4), match.group(2))
    value = _lookup(trigger_event, event_path)
    if value is _MISSING or isinstance(value, (dict, list)):
        return "", ""
    encoded = _encode(value)
    return (async_path, encoded) if len(encoded) <= MAX_VALUE_LENGTH else ("", "")


def candidate_filter(incoming: dict, paths: list[str]) -> Q:
    """Waits of the event's name that could match: no usable key, or the key's value equals."""
    condition = Q(match_path="")
    for path in paths:
        value = indexed_value(incoming, path)
        if value is not None:
            condition |= Q(match_path=path, match_value=value)
    return condition


def indexed_value(incoming: dict, path: str) -> str | None:
    """The incoming event's value at `path` as stored in `match_value`, or None when unusable."""
    value = _lookup(incoming, path)
    if value is _MISSING or isinstance(value, (dict, list)):
        return None
    return _encode(value)


def indexed_paths(event_name: str) -> list[str]:
    return list(Wait.objects.filter(event_name=event_name).exclude(match_path="").values_list("match_path", flat=True).distinct())


_MISSING = object()


def _lookup(event: dict, path: str) -> Any:
    value: Any = event
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _encode(value: Any) -> str:
    # Numbers compare across int and float in Inngest's CEL: 1 and 1.0 must give the same key.
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return json.dumps(value, sort_keys=True)
