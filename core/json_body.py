"""Request bodies read as JSON that PostgreSQL can store (protocol.md §1.4, §1.7).

Python's json module takes more than JSON, and more than jsonb and text columns take: NaN and
Infinity (and numbers past a double's range, read as inf), the NUL character and unpaired
surrogates (sent escaped: \\u0000, \\ud800), and nesting deep enough to exhaust the interpreter's
stack. Go's decoder, which SDKs are tested against, refuses the first; PostgreSQL refuses the
next two, failing the insert (for events, the whole group commit); the last fails anywhere. All
are refused up front, as a bad request.
"""
from __future__ import annotations

import json
import math
import re
from typing import Any

# Events and configs pass through recursive code (expressions, serialisers) that spends about two
# Python frames per level: this leaves room under the interpreter's limit of 1000.
MAX_DEPTH = 200
# Escapes that may decode to NUL or to half of a surrogate pair: only then are the strings walked.
_SUSPECT_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


class JSONBodyError(ValueError):
    pass


def read_json_body(body: bytes) -> Any:
    """The body's JSON value; ValueError (JSONBodyError or the decoder's) says what is wrong."""
    # Decoding first, strictly: json.loads(bytes) lets UTF-8-encoded surrogates through.
    text = body.decode("utf-8-sig")
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise JSONBodyError(f"JSON is nested more than {MAX_DEPTH} levels deep") from None
    if is_nested_deeper(text, value):
        raise JSONBodyError(f"JSON is nested more than {MAX_DEPTH} levels deep")
    if _SUSPECT_ESCAPE.search(text):
        problem = unstorable_text(value)
        if problem:
            raise JSONBodyError(problem)
    return value


def is_nested_deeper(text: str | bytes, value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether `value`, parsed from `text`, nests deeper than `limit`. Counting the brackets
    first keeps this free for the usual shallow value."""
    opened = text.count("[") + text.count("{") if isinstance(text, str) else text.count(b"[") + text.count(b"{")
    return opened > limit and _is_deeper_than(value, limit)


def _is_deeper_than(value: Any, limit: int) -> bool:
    level, depth = [value], 0
    while level:
        depth += 1
        if depth > limit:
            return True
        level = [child for item in level if isinstance(item, (dict, list))
                 for child in (item.values() if isinstance(item, dict) else item) if isinstance(child, (dict, list))]
    return False


def unstorable_text(value: Any) -> str:
    """Why a string (or key) in `value` cannot be stored, or "" when all can."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return "JSON strings cannot contain the NUL character (\\u0000)"
            if not item.isascii() and not _is_encodable(item):
                return "JSON strings cannot contain unpaired surrogates (\\ud800 to \\udfff)"
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return ""


def _is_encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _refuse_constant(name: str) -> Any:
    raise JSONBodyError(f"{name} is not a JSON value")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise JSONBodyError(f"number out of range: {text[:40]}")
    return value
