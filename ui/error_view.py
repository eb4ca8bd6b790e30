"""Errors as the SDKs report them ({"name", "message", "stack"}), read for display: the stack keeps
its line breaks instead of showing as one JSON string full of `\n`."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ErrorView:
    name: str
    message: str
    stack: str = ""
    # What else the error object carried (a cause, the SDK's own fields), as JSON.
    extra: str = ""


def read_error(value: Any) -> ErrorView | None:
    """The error in a failed run's output, a step's `{"error": …}` memo or an attempt's error;
    None when `value` does not look like one."""
    if isinstance(value, dict) and isinstance(value.get("error"), dict) and not {"name", "message"} & value.keys():
        value = value["error"]
    if not isinstance(value, dict) or not ({"name", "message"} & value.keys()):
        return None
    rest = {k: v for k, v in value.items() if k not in ("name", "message", "stack")}
    return ErrorView(
        name=str(value.get("name") or "Error"),
        message=_text(value.get("message")),
        stack=_text(value.get("stack")),
        extra=json.dumps(rest, indent=2, sort_keys=True, default=str) if rest else "",
    )


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, default=str)
