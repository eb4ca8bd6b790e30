"""Signed call bodies joined from a run's canonical parts (executor/canonical_body.py) are
`rfc8785.dumps` of the whole body, byte for byte, or refused so that the caller falls back."""
from __future__ import annotations

import json
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings, strategies as st

from core.json_body import MAX_DEPTH
from executor import canonical_body
from executor.canonical_body import MAX_PART_BYTES, RunParts, Unjoinable
from executor.transport import CallRequest

# Text of any code point: lone surrogates, astral characters (which JCS orders by their UTF-16
# surrogates, after U+E000..U+FFFF), controls and quotes.
TEXT = st.text(st.characters(codec=None, categories=None), max_size=6) | st.sampled_from(
    ["", "a", "\ufb01", "\U0001f600", "\ue000", "\u2028", '"\\', "\x7f", "\ud800"])
SCALARS = (st.none() | st.booleans() | st.integers() | st.integers(-(2 ** 53), 2 ** 53)
           | st.floats(allow_nan=True, allow_infinity=True) | st.floats(allow_nan=False, allow_infinity=False) | TEXT)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
                      max_leaves=12)


def body_of(event: dict, steps: dict, stack: list[str], attempt: int = 0) -> dict[str, Any]:
    return CallRequest(
        url="http://app/api/inngest", run_id="01RUN", fn_id="fn", step_target="step", attempt=attempt, max_attempts=4,
        event=event, events=[event, {"name": "second", "data": {}}], steps=steps, stack=stack, request_version=2,
        disable_immediate_execution=False,
    ).body()


def whole_or_refused(body: dict) -> bytes | None:
    try:
        return rfc8785.dumps(body)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError):
        return None


SHARED = RunParts()  # across examples too, so that parts of the same text from other values meet


@settings(max_examples=400, deadline=None)
@given(data=st.dictionaries(TEXT, VALUES, max_size=4), steps=st.dictionaries(TEXT, VALUES, max_size=4),
       attempt=st.integers(0, 5))
def test_a_joined_body_is_the_whole_bodys_jcs_or_is_refused(data: dict, steps: dict, attempt: int) -> None:
    """Built twice, so that the second build is made of parts the first one kept."""
    body = body_of({"name": "app/ev", "data": data, "ts": 1700000000000}, steps, list(steps), attempt)
    expected = whole_or_refused(body)
    for _ in range(2):
        if expected is None:
            with pytest.raises(Unjoinable):
                canonical_body.canonical_body(body, SHARED)
        else:
            assert canonical_body.canonical_body(body, SHARED) == expected


def test_a_part_is_kept_by_its_text_so_a_changed_value_is_never_served_stale() -> None:
    parts = RunParts()
    output = {"b": [1, 2.5, "x"], "a": {"é": None}}
    first = canonical_body.canonical_body(body_of(output, {"s1": output}, ["s1"]), parts)
    assert first == rfc8785.dumps(body_of(output, {"s1": output}, ["s1"]))
    kept = len(parts)
    again = json.loads(json.dumps(output))  # the same value read again: served from the parts
    assert canonical_body.canonical_body(body_of(again, {"s1": again}, ["s1"]), parts) == first and len(parts) == kept
    output["b"].append(3)  # the same object changed in place: canonicalized anew
    assert canonical_body.canonical_body(body_of(output, {"s1": output}, ["s1"]), parts) == \
        rfc8785.dumps(body_of(output, {"s1": output}, ["s1"]))


def test_a_part_too_large_to_keep_is_still_joined() -> None:
    parts = RunParts()
    large = {"data": "x" * MAX_PART_BYTES}
    body = body_of({"name": "app/ev", "data": {}}, {"s1": large}, ["s1"])
    assert canonical_body.canonical_body(body, parts) == rfc8785.dumps(body)
    assert len(parts) == 2  # the two events, not the step's output


def test_a_step_output_as_deep_as_an_answer_may_be_is_joined_like_the_whole() -> None:
    """Answers nested deeper than core.json_body.MAX_DEPTH are refused before they are stored;
    one at that depth is joined from the worker's thread stack like any other."""
    deep: Any = {"leaf": 1.5}
    for level in range(MAX_DEPTH - 2):
        deep = [deep] if level % 2 else {"k": deep}
    body = body_of({"name": "app/ev", "data": {}}, {"s1": {"data": deep}}, ["s1"])
    assert canonical_body.canonical_body(body, RunParts()) == rfc8785.dumps(body)
