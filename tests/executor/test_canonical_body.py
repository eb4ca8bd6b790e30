"""Signed call bodies joined from cached canonical parts (executor/canonical_body.py) are
`rfc8785.dumps` of the whole body, byte for byte, or refused so that the caller falls back."""
from __future__ import annotations

import json
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings, strategies as st

from core.json_body import MAX_DEPTH
from executor import canonical_body
from executor.canonical_body import Unjoinable, _PartCache
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


@settings(max_examples=400, deadline=None)
@given(data=st.dictionaries(TEXT, VALUES, max_size=4), steps=st.dictionaries(TEXT, VALUES, max_size=4),
       attempt=st.integers(0, 5))
def test_a_joined_body_is_the_whole_bodys_jcs_or_is_refused(data: dict, steps: dict, attempt: int) -> None:
    """Run twice, so that the second build is made of parts the first one cached (and parts of
    earlier examples, whose `json.dumps` text may be the same)."""
    body = body_of({"name": "app/ev", "data": data, "ts": 1700000000000}, steps, list(steps), attempt)
    expected = whole_or_refused(body)
    for _ in range(2):
        if expected is None:
            with pytest.raises(Unjoinable):
                canonical_body.canonical_body(body)
        else:
            assert canonical_body.canonical_body(body) == expected


def test_the_same_text_from_another_object_is_served_from_the_cache() -> None:
    canonical_body.clear()
    first = {"b": [1, 2.5, "x"], "a": {"é": None}}
    expected = rfc8785.dumps(body_of(first, {"s1": first}, ["s1"]))
    again = json.loads(json.dumps(first))
    assert again is not first and canonical_body.canonical_body(body_of(again, {"s1": again}, ["s1"])) == expected


def test_the_cache_keeps_within_its_budget_and_keeps_the_last_used_part() -> None:
    cache = _PartCache(max_bytes=2_000)
    kept = {"kept": "k" * 100}
    for n in range(200):
        assert cache.canonical({"n": n, "pad": "p" * 50}) == rfc8785.dumps({"n": n, "pad": "p" * 50})
        cache.canonical(kept)
        assert cache.cached_bytes <= 2_000
    assert json.dumps(kept, sort_keys=True, separators=(",", ":")) in cache._parts


def test_a_step_output_as_deep_as_an_answer_may_be_is_joined_like_the_whole() -> None:
    """Answers nested deeper than core.json_body.MAX_DEPTH are refused before they are stored;
    one at that depth is joined from the worker's thread stack like any other."""
    deep: Any = {"leaf": 1.5}
    for level in range(MAX_DEPTH - 2):
        deep = [deep] if level % 2 else {"k": deep}
    body = body_of({"name": "app/ev", "data": {}}, {"s1": {"data": deep}}, ["s1"])
    assert canonical_body.canonical_body(body) == rfc8785.dumps(body)
