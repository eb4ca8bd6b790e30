"""Inngest's CEL operators and functions (protocol.md §4.9) on top of celpy's strict CEL.

Numbers compare across int and double, nothing is ordered against a missing value, `+` joins a
string with a number, and Inngest's extra functions (`lowercase`, `json_parse`, `date`, `now_plus`,
...) are supplied. Whatever builds a value by its input's size charges the evaluation's budget.
"""
from __future__ import annotations

import base64
import json
import operator
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from celpy import celtypes
from celpy.evaluation import CELEvalError

from core.durations import parse_duration
from core.expression_limits import spend_on_size
from core.expression_values import NUMBERS, Missing, to_cel

# --- lenient operators ------------------------------------------------------------------------

def _is_null(value: Any) -> bool:
    return value is None or isinstance(value, (celtypes.NullType, Missing))


def _propagating(op: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """An operand that is an evaluation error makes the result that error, as in strict CEL."""

    def apply(left: Any, right: Any) -> Any:
        if isinstance(left, CELEvalError):
            return left
        if isinstance(right, CELEvalError):
            return right
        return op(left, right)

    apply.__name__ = op.__name__
    return apply


def _loose_eq(left: Any, right: Any) -> celtypes.BoolType:
    if _is_null(left) or _is_null(right):
        return celtypes.BoolType(_is_null(left) and _is_null(right))
    if isinstance(left, NUMBERS) and isinstance(right, NUMBERS):
        return celtypes.BoolType(float(left) == float(right))
    if isinstance(left, celtypes.BoolType) != isinstance(right, celtypes.BoolType):
        return celtypes.BoolType(False)  # true is not 1, whatever Python thinks
    try:
        return celtypes.BoolType(bool(left == right))
    except TypeError:
        return celtypes.BoolType(False)  # values of different kinds are simply not equal


def _loose_ne(left: Any, right: Any) -> celtypes.BoolType:
    return celtypes.BoolType(not _loose_eq(left, right))


def _loose_order(compare: Callable[[Any, Any], bool]) -> Callable[[Any, Any], celtypes.BoolType]:
    def order(left: Any, right: Any) -> celtypes.BoolType:
        if isinstance(left, NUMBERS) and isinstance(right, NUMBERS):
            return celtypes.BoolType(compare(float(left), float(right)))
        if _is_null(left) or _is_null(right):
            return celtypes.BoolType(False)  # nothing is ordered against a missing value
        return celtypes.BoolType(compare(left, right))

    return order


def _loose_add(left: Any, right: Any) -> Any:
    if isinstance(left, str) and isinstance(right, NUMBERS):
        return celtypes.StringType(f"{left}{_number_text(right)}")
    if isinstance(left, NUMBERS) and isinstance(right, str):
        return celtypes.StringType(f"{_number_text(left)}{right}")
    if isinstance(left, NUMBERS) and isinstance(right, NUMBERS) and type(left) is not type(right):
        return celtypes.DoubleType(float(left) + float(right))
    # Joining strings or lists is where an expression can build large values (doubling one in a
    # loop): each costs steps by its size.
    return spend_on_size(operator.add(left, right))


def _number_text(value: Any) -> str:
    number = float(value)
    return str(int(number)) if number.is_integer() and not isinstance(value, celtypes.DoubleType) else str(value)


# --- Inngest's extra functions -----------------------------------------------------------------

def _lowercase(value: Any) -> celtypes.StringType:
    return celtypes.StringType(spend_on_size(str(value)).lower())


def _uppercase(value: Any) -> celtypes.StringType:
    return celtypes.StringType(spend_on_size(str(value)).upper())


def _b64decode(value: Any) -> celtypes.StringType:
    text = spend_on_size(str(value))
    return celtypes.StringType(base64.b64decode(text + "=" * (-len(text) % 4)).decode())


def _json_parse(value: Any) -> Any:
    return to_cel(json.loads(spend_on_size(str(value))))


def _date(value: Any) -> celtypes.TimestampType:
    if isinstance(value, NUMBERS):
        number = float(value)
        # Unix time in seconds, milliseconds or nanoseconds, told apart by magnitude.
        seconds = number / 1e9 if abs(number) >= 1e17 else number / 1e3 if abs(number) >= 1e11 else number
        return celtypes.TimestampType(datetime.fromtimestamp(seconds, tz=timezone.utc))
    text = str(value).strip().replace("Z", "+00:00")
    parsed = datetime.fromisoformat(text)
    return celtypes.TimestampType(parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc))


def _now() -> celtypes.TimestampType:
    return celtypes.TimestampType(datetime.now(timezone.utc))


def _shifted(sign: int) -> Callable[[Any], celtypes.TimestampType]:
    def shift(duration: Any) -> celtypes.TimestampType:
        delta: timedelta = parse_duration(str(duration))
        return celtypes.TimestampType(datetime.now(timezone.utc) + sign * delta)

    return shift


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "_==_": _propagating(_loose_eq),
    "_!=_": _propagating(_loose_ne),
    "_<_": _propagating(_loose_order(operator.lt)),
    "_<=_": _propagating(_loose_order(operator.le)),
    "_>_": _propagating(_loose_order(operator.gt)),
    "_>=_": _propagating(_loose_order(operator.ge)),
    "_+_": _propagating(_loose_add),
    "lowercase": _lowercase,
    "uppercase": _uppercase,
    "b64decode": _b64decode,
    "json_parse": _json_parse,
    "date": _date,
    "now": _now,
    "now_plus": _shifted(1),
    "now_minus": _shifted(-1),
}
