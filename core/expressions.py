"""Inngest expressions: Google CEL (via `celpy`) with Inngest's lenient semantics (protocol.md §4.9).

Inngest evaluates trigger filters, `if` conditions and keys over events that vary in shape, so
its CEL is forgiving (core/expression_values.py, core/expression_functions.py). celpy is strict
CEL; the lenient parts are supplied as value types and operator overrides, not a parser.
Expressions are the apps' code run inside our requests and tasks: compiling checks their size and
depth, and evaluating spends a budget (core/expression_limits.py). Evaluation raises only
ExpressionError, whatever went wrong inside.
"""
from __future__ import annotations

import threading
from functools import lru_cache
from typing import Any

import celpy
from celpy import InterpretedRunner, celtypes
from celpy.evaluation import CELEvalError, Evaluator

from core.expression_functions import FUNCTIONS
from core.expression_limits import (
    MACRO_ELEMENT_STEPS, Budget, BudgetExceeded, current_budget, flatten, source_problem, tree_problem,
)
from core.expression_values import LenientMap, Missing, from_cel, readable_part, read_paths, to_cel


class ExpressionError(ValueError):
    pass


class _BudgetedEvaluator(Evaluator):
    """celpy's evaluator with Inngest's has() and an evaluation budget spent at every node."""

    def __init__(self, ast: Any, activation: Any, budget: Budget) -> None:
        super().__init__(ast=ast, activation=activation)
        self.budget = budget

    def _visit_tree(self, tree: Any) -> Any:
        # lark's Interpreter sends every visit, children included, through here.
        self.budget.spend()
        return super()._visit_tree(tree)

    def sub_evaluator(self, ast: Any) -> Evaluator:
        # Macros evaluate their body with a sub-evaluator: it must spend the same budget (and
        # read missing fields the same way).
        return _BudgetedEvaluator(ast, self.activation, self.budget)

    def set_activation(self, values: Any) -> Evaluator:
        self.budget.spend(MACRO_ELEMENT_STEPS)
        return super().set_activation(values)

    def macro_has_eval(self, exprlist: Any) -> celtypes.BoolType:
        # A missing field reads as null everywhere else, but has() must still say it is absent.
        (value,) = self.visit_children(exprlist)
        return celtypes.BoolType(not isinstance(value, (CELEvalError, Missing)))


class _BudgetedRunner(InterpretedRunner):
    def evaluate(self, context: Any) -> Any:
        budget = current_budget.get() or Budget()
        return _BudgetedEvaluator(self.ast, self.new_activation(), budget).evaluate(context)


# celpy's parser is a shared Lark instance: compile under a lock, evaluate freely (each
# evaluation builds its own evaluator). The length cap keeps the time under the lock short.
_compile_lock = threading.Lock()
_environment = celpy.Environment(runner_class=_BudgetedRunner)


class Expression:
    """A compiled expression; evaluate it against an event (and the incoming `async` event)."""

    def __init__(self, source: str, runner: Any, reads: dict[str, Any]) -> None:
        self.source = source
        self._runner = runner
        self._reads = reads

    def evaluate(self, event: dict | None = None, async_event: dict | None = None) -> Any:
        """The expression's value; ExpressionError for anything that goes wrong on the way."""
        token = current_budget.set(Budget())
        try:
            activation = {
                "event": to_cel(readable_part(event or {}, self._reads["event"])),
                "async": to_cel(readable_part(async_event or {}, self._reads["async"])),
                "vars": LenientMap({}),
            }
            value = self._runner.evaluate(activation)
            if isinstance(value, CELEvalError):
                raise value
            return from_cel(value)
        # Any exception at all: the expression and the data are the app's, and what they can make
        # celpy or Python raise (RecursionError, OverflowError, MemoryError, ValueError from inside
        # celpy, the budget) is not ours to let through to the request or task evaluating them.
        except Exception as exc:  # noqa: BLE001
            raise ExpressionError(f"cannot evaluate expression {quoted(self.source)}: {_describe(exc)}") from None
        finally:
            current_budget.reset(token)

    def is_true(self, event: dict | None = None, async_event: dict | None = None) -> bool:
        """True only for a boolean true result; raises ExpressionError when it cannot be evaluated."""
        return self.evaluate(event, async_event) is True


def compile_expression(source: str) -> Expression:
    """The compiled expression; ExpressionError when it is invalid or over a limit."""
    if not isinstance(source, str) or not source.strip():
        raise ExpressionError("an expression must be a non-empty string")
    problem = source_problem(source)
    if problem:
        raise ExpressionError(problem)
    compiled = _compile(source)
    if isinstance(compiled, str):
        raise ExpressionError(compiled)
    return compiled


@lru_cache(maxsize=4096)
def _compile(source: str) -> Expression | str:
    """The expression, or why it cannot be compiled (cached too: a stored expression that no
    longer compiles is looked at for every event of its name)."""
    try:
        with _compile_lock:
            ast = _environment.compile(source)
        ast = flatten(ast)
        problem = tree_problem(ast)
        if problem:
            return f"{problem}: {quoted(source)}"
        return Expression(source, _environment.program(ast, functions=FUNCTIONS), read_paths(ast))
    except celpy.CELParseError as exc:
        return f"invalid expression {quoted(source)}: {_first_line(exc)}"
    # Anything else the parser raises on an app's text is the text's problem too.
    except Exception as exc:  # noqa: BLE001
        return f"invalid expression {quoted(source)}: {_describe(exc, doing='parse')}"


def quoted(source: str, limit: int = 120) -> str:
    """The source for a message: a long one cut, so an error never repeats kilobytes."""
    return repr(source if len(source) <= limit else source[:limit] + "…")


def _describe(exc: BaseException, doing: str = "evaluate") -> str:
    if isinstance(exc, RecursionError):
        return f"nested too deeply to {doing}"
    if isinstance(exc, MemoryError):
        return "out of memory"
    text = _first_line(exc)
    return text if isinstance(exc, (CELEvalError, ExpressionError, BudgetExceeded)) else f"{type(exc).__name__}: {text}"


def _first_line(exc: BaseException) -> str:
    text = str(exc.args[0]) if exc.args else str(exc)
    return text.splitlines()[0][:300] if text else type(exc).__name__
