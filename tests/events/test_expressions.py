"""Inngest's lenient CEL: one row per behaviour (protocol.md §4.9). No database needed."""
from __future__ import annotations

import pytest

from core.expressions import ExpressionError, compile_expression

EVENT = {
    "name": "shop/order.paid", "id": "evt-1", "ts": 1_700_000_000_000,
    "data": {"plan": "pro", "n": 5, "ratio": 1.0, "text": "x", "flag": True, "items": [1, 2, 3], "user": {"id": "u1"}},
    "user": {},
}
ASYNC = {"name": "shop/order.cancelled", "data": {"user": {"id": "u1"}, "n": 5}}

CASES = [
    ("string equality", "event.data.plan == 'pro'", True),
    ("event name", "event.name == 'shop/order.paid'", True),
    ("and of comparisons", "event.data.plan == 'pro' && event.data.n > 3", True),
    ("missing attribute equals null", "event.data.missing == null", True),
    ("missing attribute is not a string", "event.data.missing == 'x'", False),
    ("missing nested attribute equals null", "event.data.a.b.c == null", True),
    ("missing attribute is not different from null", "event.data.missing != null", False),
    ("nothing orders against a missing value", "event.data.n > event.data.missing", False),
    ("int equals whole double", "event.data.ratio == 1", True),
    ("double literal equals int", "event.data.n == 5.0", True),
    ("int compares with double", "event.data.n > 4.5", True),
    ("bool is not one", "event.data.flag == 1", False),
    ("string plus number concatenates", "event.data.text + event.data.n", "x5"),
    ("number plus string concatenates", "1 + 'a'", "1a"),
    ("nested map", "event.data.user.id == 'u1'", True),
    ("async variable", "async.data.user.id == event.data.user.id", True),
    ("in list", "event.data.n in [4, 5]", True),
    ("ternary gives an int", "event.data.plan == 'pro' ? 120 : 0", 120),
    ("has on a present field", "has(event.data.plan)", True),
    ("has on a missing field", "has(event.data.nope)", False),
    ("has below a missing field", "has(event.data.nope.deeper)", False),
    ("exists macro", "event.data.items.exists(x, x > 2)", True),
    ("all macro", "event.data.items.all(x, x > 0)", True),
    ("map macro", "event.data.items.map(x, x * 2)", [2, 4, 6]),
    ("filter macro", "event.data.items.filter(x, x > 1)", [2, 3]),
    ("size", "size(event.data.items)", 3),
    ("startsWith", "event.data.plan.startsWith('p')", True),
    ("lowercase", "lowercase('ABC')", "abc"),
    ("uppercase", "uppercase(event.data.plan)", "PRO"),
    ("b64decode without padding", "b64decode('aGVsbG8')", "hello"),
    ("json_parse", "json_parse('{\"a\": {\"b\": 2}}').a.b", 2),
    ("date of an RFC 3339 string", "date('2024-01-01T00:00:00Z') < date('2024-01-02T00:00:00Z')", True),
    ("date of unix milliseconds", "date(event.ts) == date('2023-11-14T22:13:20Z')", True),
    ("date of unix seconds", "date(1700000000) == date(1700000000000)", True),
    ("now_plus is later than now", "now_plus('1h') > now()", True),
    ("now_minus is earlier than now", "now_minus('2d') < now()", True),
    ("vars is an empty map", "vars.anything == null", True),
]


@pytest.mark.parametrize("source, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_expression_evaluates_like_inngest(source: str, expected: object) -> None:
    assert compile_expression(source).evaluate(EVENT, ASYNC) == expected


@pytest.mark.parametrize("source", ["event.data.plan ==", "((", "event.data.'x'", ""])
def test_syntax_error_is_an_expression_error_naming_the_expression(source: str) -> None:
    with pytest.raises(ExpressionError) as error:
        compile_expression(source)
    assert (repr(source) in str(error.value)) or "non-empty" in str(error.value)


def test_expression_whose_value_is_not_true_is_false() -> None:
    assert compile_expression("event.data.n").is_true(EVENT) is False


@pytest.mark.parametrize("source", ["1 / 0 == 1", "event.data.plan > 3", "json_parse('not json').a == 1"])
def test_expression_that_cannot_be_evaluated_raises_expression_error_from_is_true(source: str) -> None:
    with pytest.raises(ExpressionError, match="cannot evaluate expression"):
        compile_expression(source).is_true(EVENT)


def test_evaluation_error_says_what_failed() -> None:
    with pytest.raises(ExpressionError, match="cannot evaluate expression '1 / 0 == 1'"):
        compile_expression("1 / 0 == 1").evaluate(EVENT)


def test_compiled_expressions_are_cached() -> None:
    assert compile_expression("event.data.n == 5") is compile_expression("event.data.n == 5")


def test_integers_past_a_doubles_range_compare_as_infinities() -> None:
    event = {"data": {"big": 10**400, "small": -(10**400)}}
    assert compile_expression("event.data.big > 1e300 && event.data.small < -1e300").is_true(event)
