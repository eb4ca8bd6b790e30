"""Inngest expressions: Google CEL (via `celpy`) with Inngest's lenient semantics (protocol.md §4.9).

Inngest evaluates trigger filters, `if` conditions and keys over events that vary in shape, so
its CEL is forgiving: a missing attribute reads as null instead of failing the whole expression,
numbers compare across int and double, and `+` joins a string with a number. celpy is strict
CEL; the lenient parts are supplied here as value types and operator overrides, not a parser.
"""
from __future__ import annotations

import base64
import json
import math
import operator
import threading
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, Callable

import celpy
from celpy import celtypes
from celpy import InterpretedRunner
from celpy.evaluation import CELEvalError, Evaluator

from executor.durations import DurationError, parse_duration

_NUMBERS = (celtypes.IntType, celtypes.UintType, celtypes.DoubleType)


class ExpressionError(ValueError):
    pass


class LenientMap(celtypes.MessageType):
    """A map whose missing fields read as null. celpy selects message fields with `.get()`."""

    def get(self, key: Any, default: Any = None) -> Any:  # noqa: D401 - celpy's hook
        return super().get(key, MISSING)


class Missing(LenientMap):
    """What an absent attribute evaluates to: equal to null, and its own fields are missing too."""

    def __eq__(self, other: Any) -> bool:
        return other is None or isinstance(other, (celtypes.NullType, Missing))

    def __ne__(self, other: Any) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "Missing()"


MISSING = Missing()


def to_cel(value: Any) -> Any:
    """A JSON-like Python value as celpy values (bool before int: bool is an int in Python)."""
    if value is None:
        return celtypes.NullType()
    if isinstance(value, bool):
        return celtypes.BoolType(value)
    if isinstance(value, int):
        return celtypes.IntType(value) if -(2**63) <= value < 2**63 else celtypes.DoubleType(_as_double(value))
    if isinstance(value, float):
        return celtypes.DoubleType(value)
    if isinstance(value, str):
        return celtypes.StringType(value)
    if isinstance(value, dict):
        return LenientMap({celtypes.StringType(str(k)): to_cel(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return celtypes.ListType([to_cel(v) for v in value])
    return celtypes.StringType(str(value))


def _as_double(value: int) -> float:
    # Python reads JSON integers of any size; past a double's range one compares as ±infinity.
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def from_cel(value: Any) -> Any:
    """celpy values back to plain JSON-like Python values."""
    if value is None or isinstance(value, (celtypes.NullType, Missing)):
        return None
    if isinstance(value, celtypes.BoolType):
        return bool(value)
    if isinstance(value, (celtypes.IntType, celtypes.UintType)):
        return int(value)
    if isinstance(value, celtypes.DoubleType):
        return float(value)
    if isinstance(value, celtypes.TimestampType):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): from_cel(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [from_cel(v) for v in value]
    if isinstance(value, (str, bytes)):
        return str(value) if isinstance(value, str) else bytes(value).decode(errors="replace")
    return value


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
    if isinstance(left, _NUMBERS) and isinstance(right, _NUMBERS):
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
        if isinstance(left, _NUMBERS) and isinstance(right, _NUMBERS):
            return celtypes.BoolType(compare(float(left), float(right)))
        if _is_null(left) or _is_null(right):
            return celtypes.BoolType(False)  # nothing is ordered against a missing value
        return celtypes.BoolType(compare(left, right))

    return order


def _loose_add(left: Any, right: Any) -> Any:
    if isinstance(left, str) and isinstance(right, _NUMBERS):
        return celtypes.StringType(f"{left}{_number_text(right)}")
    if isinstance(left, _NUMBERS) and isinstance(right, str):
        return celtypes.StringType(f"{_number_text(left)}{right}")
    if isinstance(left, _NUMBERS) and isinstance(right, _NUMBERS) and type(left) is not type(right):
        return celtypes.DoubleType(float(left) + float(right))
    return operator.add(left, right)


def _number_text(value: Any) -> str:
    number = float(value)
    return str(int(number)) if number.is_integer() and not isinstance(value, celtypes.DoubleType) else str(value)


# --- Inngest's extra functions -----------------------------------------------------------------

def _lowercase(value: Any) -> celtypes.StringType:
    return celtypes.StringType(str(value).lower())


def _uppercase(value: Any) -> celtypes.StringType:
    return celtypes.StringType(str(value).upper())


def _b64decode(value: Any) -> celtypes.StringType:
    text = str(value)
    return celtypes.StringType(base64.b64decode(text + "=" * (-len(text) % 4)).decode())


def _json_parse(value: Any) -> Any:
    return to_cel(json.loads(str(value)))


def _date(value: Any) -> celtypes.TimestampType:
    if isinstance(value, _NUMBERS):
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

class _LenientEvaluator(Evaluator):
    def macro_has_eval(self, exprlist: Any) -> celtypes.BoolType:
        # A missing field reads as null everywhere else, but has() must still say it is absent.
        (value,) = self.visit_children(exprlist)
        return celtypes.BoolType(not isinstance(value, (CELEvalError, Missing)))


class _LenientRunner(InterpretedRunner):
    def evaluate(self, context: Any) -> Any:
        return _LenientEvaluator(ast=self.ast, activation=self.new_activation()).evaluate(context)


# celpy's parser is a shared Lark instance: compile under a lock, evaluate freely (each
# evaluation builds its own evaluator).
_compile_lock = threading.Lock()
_environment = celpy.Environment(runner_class=_LenientRunner)


class Expression:
    """A compiled expression; evaluate it against an event (and the incoming `async` event)."""

    def __init__(self, source: str, runner: Any) -> None:
        self.source = source
        self._runner = runner

    def evaluate(self, event: dict | None = None, async_event: dict | None = None) -> Any:
        activation = {"event": to_cel(event or {}), "async": to_cel(async_event or {}), "vars": LenientMap({})}
        try:
            value = self._runner.evaluate(activation)
        except (CELEvalError, TypeError, ValueError, KeyError, DurationError, ZeroDivisionError) as exc:
            raise ExpressionError(f"cannot evaluate expression {self.source!r}: {_first_line(exc)}") from None
        if isinstance(value, CELEvalError):
            raise ExpressionError(f"cannot evaluate expression {self.source!r}: {_first_line(value)}")
        return from_cel(value)

    def is_true(self, event: dict | None = None, async_event: dict | None = None) -> bool:
        """True only for a boolean true result; an expression that cannot be evaluated is false."""
        try:
            return self.evaluate(event, async_event) is True
        except ExpressionError:
            return False


@lru_cache(maxsize=4096)
def compile_expression(source: str) -> Expression:
    if not isinstance(source, str) or not source.strip():
        raise ExpressionError("an expression must be a non-empty string")
    try:
        with _compile_lock:
            ast = _environment.compile(source)
            runner = _environment.program(ast, functions=FUNCTIONS)
    except celpy.CELParseError as exc:
        raise ExpressionError(f"invalid expression {source!r}: {_first_line(exc)}") from None
    return Expression(source, runner)


def _first_line(exc: BaseException) -> str:
    text = str(exc.args[0]) if exc.args else str(exc)
    return text.splitlines()[0] if text else type(exc).__name__

