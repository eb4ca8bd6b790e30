"""Hostile expressions: refused at compile, or stopped by the evaluation budget; never anything
but an ExpressionError. No database needed."""
from __future__ import annotations

import pytest

from core import expressions
from core.expression_limits import MAX_DEPTH, MAX_LENGTH, MAX_STEPS, MAX_TOKENS
from core.expressions import ExpressionError, compile_expression

SIXTY = {"data": {"a": 1, "l": list(range(60)), "m": [[1, 2, 3]] * 10}}
L = "event.data.l"
# The expressions the issue reproduced, as sent.
PARENS_300 = "(" * 300 + "event.data.a == 1" + ")" * 300
NESTED_MAP_3 = f"{L}.map(a, {L}.map(b, {L}.map(c, 1))).size() > 0"
MEGABYTES = "event.data.a == 1 || " * 70_000 + "true"  # 1.4 MB


def parses() -> int:
    return expressions._compile.cache_info().misses


def test_a_megabyte_expression_is_refused_before_it_is_parsed() -> None:
    before = parses()
    with pytest.raises(ExpressionError, match=f"is 1,470,004 characters long; the limit is {MAX_LENGTH:,}"):
        compile_expression(MEGABYTES)
    assert parses() == before


def test_three_hundred_nested_parentheses_are_refused_before_they_are_parsed() -> None:
    before = parses()
    with pytest.raises(ExpressionError, match=f"nests more than {MAX_DEPTH // 2} brackets deep"):
        compile_expression(PARENS_300)
    assert parses() == before


@pytest.mark.parametrize("source", [
    ("1+" * 2000)[:MAX_LENGTH - 1] + "1",
    "[" + ",".join(["1"] * 1000) + "] == []",
], ids=["4 KB of 1+1+1", "list of 1,000 numbers"])
def test_dense_expression_is_refused_before_it_is_parsed(source: str) -> None:
    before = parses()
    with pytest.raises(ExpressionError, match=f"has more than {MAX_TOKENS:,} tokens"):
        compile_expression(source)
    assert parses() == before


@pytest.mark.parametrize("source", [
    " || ".join(f"a == {i}" for i in range(MAX_DEPTH + 10)),
    " + ".join(["1"] * MAX_DEPTH) + " > 0",
    "!" * (MAX_DEPTH + 5) + "true",
    "event" + ".a" * (MAX_DEPTH + 5) + " == null",
], ids=["or chain", "sum", "negations", "attribute chain"])
def test_expression_deeper_than_the_limit_is_refused_after_parsing(source: str) -> None:
    with pytest.raises(ExpressionError, match=f"levels deep; the limit is {MAX_DEPTH}"):
        compile_expression(source)


@pytest.mark.parametrize("source, expected", [
    ("(" * 40 + "event.data.a == 1" + ")" * 40, True),
    (" || ".join(f"event.data.a == {i}" for i in range(100, 200)) + " || event.data.a == 1", True),
    (" + ".join(["1"] * 60) + " == 60", True),
    ("event.data.l.exists(x, x == 59)", True),
    ("event.data.m.exists(o, o.exists(i, i == 3))", True),
    ("event.data.l.map(x, event.data.l).size() == 60", True),
    ("event.data.id in [" + ",".join(f"'id-{n:030d}'" for n in range(100)) + "]", False),
], ids=["40 nested parentheses", "101-term or chain", "60-term sum", "exists over 60", "nested over 10 x 3",
        "map building lists", "100 ids in a list of 3.5 KB"])
def test_ordinary_expressions_stay_within_the_limits(source: str, expected: object) -> None:
    assert compile_expression(source).evaluate(SIXTY) == expected


def test_four_nested_comprehensions_are_refused_at_compile() -> None:
    with pytest.raises(ExpressionError, match="nests 4 comprehensions .* the limit is 3"):
        compile_expression(f"{L}.map(a, {L}.map(b, {L}.exists(c, {L}.all(d, d > c))))")


def test_chained_comprehensions_do_not_count_as_nested() -> None:
    source = f"{L}.map(a, a).map(b, b).filter(c, c > 0).map(d, d).exists(e, e == 59)"
    assert compile_expression(source).evaluate(SIXTY) is True


@pytest.mark.parametrize("source", [
    NESTED_MAP_3,
    f"{L}.map(a, {L}.map(b, 1)).size() > 0",
    f"{L}.reduce(r, i, 'ab', r + r).size() > 0",
], ids=["map in map in map over 60", "map in map over 60", "string doubled in a reduce"])
def test_costly_evaluation_is_stopped_by_the_budget(source: str) -> None:
    with pytest.raises(ExpressionError, match="evaluation stopped: it (needs more than|took more than)"):
        compile_expression(source).evaluate(SIXTY)


def test_each_evaluation_has_a_budget_of_its_own() -> None:
    costly = compile_expression(NESTED_MAP_3)
    cheap = compile_expression(f"{L}.exists(x, x == 59)")
    for _ in range(3):
        with pytest.raises(ExpressionError, match="evaluation stopped"):
            costly.evaluate(SIXTY)
        assert cheap.evaluate(SIXTY) is True


@pytest.mark.parametrize("source, event, reason", [
    ("date(1e300) > now()", {}, "OverflowError: timestamp out of range"),
    ("json_parse(event.data.s).a == 1", {"data": {"s": "[" * 5000 + "]" * 5000}}, "nested too deeply to evaluate"),
    ("date(event.data.t) > now()", {"data": {"t": "not a date"}}, "date"),
    ("int('9' * 2) == 1", {}, "found no matching overload"),
    ("now_plus(event.data.d) > now()", {"data": {"d": "99999999999999h"}}, "cannot evaluate"),
], ids=["date of 1e300", "deep json_parse", "date of text", "string repetition", "huge duration"])
def test_any_failure_inside_evaluation_is_an_expression_error(source: str, event: dict, reason: str) -> None:
    with pytest.raises(ExpressionError) as error:
        compile_expression(source).evaluate(event)
    assert reason in str(error.value) and str(error.value).startswith("cannot evaluate expression")


def test_large_parts_of_an_event_the_expression_does_not_read_cost_nothing() -> None:
    # Converted whole, 400,000 items would cost 50,000 steps: only what is read is converted.
    event = {"name": "big", "data": {"a": 1, "big": [0] * 400_000, "nested": {"big": ["x"] * 400_000, "b": 2}}}
    assert compile_expression("event.data.a == 1 && event.data.nested.b == 2 && !has(event.data.c)").evaluate(event) is True
    with pytest.raises(ExpressionError, match=f"needs more than {MAX_STEPS:,} steps"):
        compile_expression("size(event.data.big) > 0").evaluate(event)


@pytest.mark.parametrize("source, expected", [
    ("size(event.data) == 3", True),
    ("event.data['a'] == 1", True),
    ("event.data.user == {'id': 'u1'}", True),
    ("has(event.data.user.id) && !has(event.data.user.name)", True),
    ("[event][0].data.a == 1", True),
    ("event.data.l.map(event, event * 2) == [2, 4]", True),
    ("event.data.user.id + async.data.id", "u1u2"),
    ("async.data.id == event.data.user.id", False),
    ("async == {'data': {'id': 'u2'}, 'name': 'x'}", True),
], ids=["size of a map", "index", "map compared whole", "has", "event inside a list", "macro variable named event",
        "both events", "both events compared", "async whole"])
def test_what_is_read_of_an_event_gives_the_same_values_as_the_whole_event(source: str, expected: object) -> None:
    event = {"name": "n", "data": {"a": 1, "l": [1, 2], "user": {"id": "u1"}}}
    assert compile_expression(source).evaluate(event, {"name": "x", "data": {"id": "u2"}}) == expected


def test_error_messages_quote_a_long_expression_shortened() -> None:
    source = "event.data.a == 1 && " * 100 + "date(1e300) > now()"
    with pytest.raises(ExpressionError) as error:
        compile_expression(source).evaluate({"data": {"a": 1}})
    assert len(str(error.value)) < 400 and "…" in str(error.value)


@pytest.mark.parametrize("source, expected", [
    ("'" + "(" * 200 + "' == event.data.s", False),
    ('"""' + "[" * 200 + '""" == event.data.s', False),
    ("r'\\'' + '" + "{" * 200 + "' == event.data.s", False),
    ("event.data.s == 'x' // " + "(" * 200, True),
], ids=["single quotes", "triple quotes", "raw string", "comment"])
def test_brackets_inside_strings_and_comments_do_not_count(source: str, expected: bool) -> None:
    assert compile_expression(source).evaluate({"data": {"s": "x"}}) is expected
