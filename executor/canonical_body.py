"""A signed call's body in JCS form (RFC 8785), built from parts canonicalized once per run.

A run's calls repeat most of their body: its events (twice, as `event` and `events`) and every
step output memoized so far. `rfc8785` serializes in Python, a value at a time, and was about a
fifth of a worker's CPU on signed calls (bench/README.md). Here:
- each repeated part is canonicalized once while a worker holds the run, and kept beside the
  run's memo (executor/run_loop.py RunMemo), keyed by its `json.dumps` text (C code), so a later
  call pays only for that text and a look-up; the parts go when the worker's turn at the run
  ends, so a worker keeps no more than the runs it is calling;
- a part with no floats, integers JavaScript holds exactly and ASCII keys is written by the json
  module's C encoder: for such values its output is JCS's, byte for byte (the same escapes, and
  code point order is UTF-16 order for ASCII keys); any other part is `rfc8785`'s;
- the parts are joined in JCS's key order.

A body this module cannot build exactly (a part JCS has no form for, keys it cannot order)
raises `Unjoinable`, after which the caller canonicalizes the whole body as before. The tests
compare every body with `rfc8785.dumps` of the whole.
"""
from __future__ import annotations

import json
from typing import Any

import rfc8785

# A part larger than this is canonicalized on every call rather than kept twice more (its text
# and its canonical bytes) beside the memo.
MAX_PART_BYTES = 1024 * 1024
MAX_SAFE_INTEGER = 2 ** 53 - 1  # beyond it JCS has no form for an integer (rfc8785 refuses it)

_LOOKUP_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"))  # a part's text, to find it by
_PLAIN_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))


class Unjoinable(ValueError):
    """The body has a part that only a whole-body canonicalization may decide about."""


class RunParts:
    """One run's canonical parts by their `json.dumps` text, for the calls one worker makes to
    it in a row (one thread at a time). Keyed by content, not by object, so a part changed or
    read again from the database is never served stale."""

    def __init__(self) -> None:
        self._parts: dict[str, bytes] = {}

    def __len__(self) -> int:
        return len(self._parts)

    def canonical(self, value: Any) -> bytes:
        try:
            text = _LOOKUP_ENCODER.encode(value)
        except (TypeError, ValueError) as exc:
            raise Unjoinable(str(exc)) from exc
        part = self._parts.get(text)
        if part is None:
            part = _canonical(value)
            if len(text) <= MAX_PART_BYTES:
                self._parts[text] = part
        return part


def canonical_body(body: dict[str, Any], parts: RunParts) -> bytes:
    """`rfc8785.dumps(body)`, byte for byte, for a call body (executor/transport.py CallRequest)."""
    seen: dict[int, bytes] = {}  # by identity within this body: `event` is `events[0]`
    return _join_object([(key, _member(key, value, parts, seen)) for key, value in body.items()])


def _member(key: str, value: Any, parts: RunParts, seen: dict[int, bytes]) -> bytes:
    """The parts a run's calls repeat come from `parts`: the event, each of the events and each
    memoized step's output. The rest (ctx, defers, scalars) changes from call to call."""
    if key == "event":
        return _repeated(value, parts, seen)
    if key == "events" and isinstance(value, list):
        return b"[" + b",".join(_repeated(item, parts, seen) for item in value) + b"]"
    if key == "steps" and isinstance(value, dict):
        return _join_object([(step_id, _repeated(output, parts, seen)) for step_id, output in value.items()])
    return _canonical(value)


def _repeated(value: Any, parts: RunParts, seen: dict[int, bytes]) -> bytes:
    part = seen.get(id(value))
    if part is None:
        part = seen[id(value)] = parts.canonical(value)
    return part


def _join_object(members: list[tuple[str, bytes]]) -> bytes:
    """An object from its members' canonical values, ordered as JCS orders keys (UTF-16 code
    units); a key that is not text, or has no UTF-16 form, is left to the whole-body path."""
    try:
        ordered = sorted(members, key=lambda member: member[0].encode("utf-16be"))
    except (AttributeError, UnicodeEncodeError) as exc:
        raise Unjoinable(str(exc)) from exc
    return b"{" + b",".join(_canonical(key) + b":" + part for key, part in ordered) + b"}"


def _canonical(value: Any) -> bytes:
    try:
        if _is_plain(value):
            return _PLAIN_ENCODER.encode(value).encode()  # a lone surrogate has no UTF-8 form
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError) as exc:
        raise Unjoinable(str(exc)) from exc


def _is_plain(value: Any) -> bool:
    """A value the json module writes as JCS does: no float (JCS writes numbers as JavaScript
    does, Python does not), no integer beyond JavaScript's exact range, only ASCII object keys."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER
    if kind is list:
        return all(_is_plain(item) for item in value)
    if kind is dict:
        return all(type(key) is str and key.isascii() and _is_plain(item) for key, item in value.items())
    return False
