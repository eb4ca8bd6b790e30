"""What an expression may cost: caps checked when it is compiled, a budget spent while it runs.

Expressions come from apps (triggers, `if`s, keys, priorities) and from the bulk cancellation
API, and are evaluated inside requests and worker tasks, for every event of a name. celpy is a
tree-walking interpreter: a deep tree exhausts the interpreter's stack, a long source holds the
shared parser's lock while it is parsed (25 to 70 µs a token), and comprehension macros nest
into loops over whole lists (30 to 100 µs an element). So:

- at compile: caps on length, tokens and bracket depth (before parsing, which holds the
  parser's lock), then a depth cap on the tree and a cap on how deeply comprehension macros
  nest (after parsing). Pass-through nodes of the grammar are removed first (`flatten`), so
  the depth counts what the expression nests, not the grammar.
- at evaluation: a step budget (one step per tree node visited, more per macro element and per
  item converted or built) and a CPU-time budget, both checked as it goes. CPU time of the
  evaluating thread, not wall time: a thread waiting for the GIL or a core on a busy machine
  must not make an ordinary expression fail. The time is the backstop for single C-level calls
  (a regex over a 3 MiB string) repeated in a loop; the steps make ordinary cut-offs the same
  on a busy machine as on an idle one.
"""
from __future__ import annotations

import time
from contextvars import ContextVar
from typing import Any

import lark

MAX_LENGTH = 4096  # characters
# What the parser reads: its time, under the lock, goes by tokens (25 to 70 µs each), so a
# short dense expression (`1+1+1…`) is refused before it is parsed, a long list of ids is not.
MAX_TOKENS = 1024
# Tree levels once flattened. A level takes about two units of the interpreter's recursion limit
# (1000) while evaluating, and the caller (a request, a task) and comparisons of deep event data
# need the rest. About 50 nested parentheses, a 140-term `||` chain.
MAX_DEPTH = 150
MAX_MACRO_NESTING = 3  # map/filter/all/exists/exists_one inside each other
MAX_STEPS = 5_000  # per evaluation: 5 to 40 ms of celpy's work; a macro visits about 250 elements
MAX_CPU_SECONDS = 0.05  # per evaluation
MACRO_ELEMENT_STEPS = 10  # each element a macro visits clones the activation: ten nodes' worth
# What one step buys of values converted or built: strings are copied in C, so cheap; list
# and map items each become a celpy object.
CHARACTERS_PER_STEP = 1024
ITEMS_PER_STEP = 8
_CLOCK_EVERY = 8  # steps between two reads of the thread's CPU clock (a system call)

_OPERATOR_CHARACTERS = frozenset("=!<>&|")
_MACROS = frozenset({"map", "filter", "all", "exists", "exists_one", "reduce"})
# Rules that, with a single child, only pass its value up (celpy's methods for them do exactly
# that). `member` is kept: member_object looks at whether its child is a `primary`.
_PASS_THROUGH = frozenset({"expr", "conditionalor", "conditionaland", "relation", "addition", "multiplication", "unary"})


class BudgetExceeded(Exception):
    """Not a ValueError or TypeError: celpy turns those into CEL error values and carries on."""


class Budget:
    """The steps and CPU time one evaluation may still spend."""

    __slots__ = ("steps_left", "next_clock_at", "cpu_deadline")

    def __init__(self, steps: int = MAX_STEPS, cpu_seconds: float = MAX_CPU_SECONDS) -> None:
        self.steps_left = steps
        self.next_clock_at = steps - _CLOCK_EVERY
        self.cpu_deadline = time.thread_time() + cpu_seconds

    def spend(self, steps: int = 1) -> None:
        self.steps_left -= steps
        if self.steps_left > self.next_clock_at:
            return
        if self.steps_left < 0:
            raise BudgetExceeded(f"evaluation stopped: it needs more than {MAX_STEPS:,} steps")
        self.next_clock_at = self.steps_left - _CLOCK_EVERY
        if time.thread_time() > self.cpu_deadline:
            raise BudgetExceeded(f"evaluation stopped: it took more than {int(MAX_CPU_SECONDS * 1000)} ms")


# The budget of the evaluation running in this thread, for the functions an expression calls
# (they get only their arguments from celpy).
current_budget: ContextVar[Budget | None] = ContextVar("expression_budget", default=None)


def spend_on_size(value: Any) -> Any:
    """Charge the running evaluation for a string, list or map it converts or builds, before the
    work where it can; returns the value."""
    budget = current_budget.get()
    if budget is not None:
        if isinstance(value, (str, bytes)):
            budget.spend(len(value) // CHARACTERS_PER_STEP)
        elif isinstance(value, (list, tuple, dict)):
            budget.spend(len(value) // ITEMS_PER_STEP)
    return value


def source_problem(source: str) -> str:
    """Why `source` is refused before it is parsed (under the parser's lock), or ""."""
    if len(source) > MAX_LENGTH:
        return f"the expression is {len(source):,} characters long; the limit is {MAX_LENGTH:,}"
    depth, tokens = _scan(source)
    # Every bracket nests at least two tree levels (a paren three, a call or a list four): more
    # than half the depth limit in brackets can only fail the depth check after parsing.
    if depth > MAX_DEPTH // 2:
        return f"the expression nests more than {MAX_DEPTH // 2} brackets deep"
    if tokens > MAX_TOKENS:
        return f"the expression has more than {MAX_TOKENS:,} tokens"
    return ""


def _scan(source: str) -> tuple[int, int]:
    """The deepest nesting of (, [ and { outside string literals and comments, and about how many
    tokens the parser will read (a string, a name or number, an operator, any other character)."""
    depth = deepest = tokens = index = 0
    while index < len(source):
        char = source[index]
        if char in "'\"":
            index, tokens = _string_end(source, index), tokens + 1
            continue
        if source.startswith("//", index):
            index = source.find("\n", index)
            if index < 0:
                break
        elif char.isalnum() or char == "_":
            tokens += not (index and (source[index - 1].isalnum() or source[index - 1] == "_"))
        elif char in _OPERATOR_CHARACTERS:
            tokens += not (index and source[index - 1] in _OPERATOR_CHARACTERS)  # ==, &&, ||, <= ...
        elif not char.isspace():
            tokens += 1
            depth += (char in "([{") - (char in ")]}")
            deepest = max(deepest, depth)
        index += 1
    return deepest, tokens


def _string_end(source: str, start: int) -> int:
    """The index after the string literal opening at `start` ('', "", triple quotes). A backslash
    escapes the next character, in raw strings too: celpy's lexer reads them so."""
    quote = source[start] * 3 if source.startswith(source[start] * 3, start) else source[start]
    index = start + len(quote)
    while index < len(source):
        if source.startswith(quote, index):
            return index + len(quote)
        index += 2 if source[index] == "\\" else 1
    return index


def flatten(tree: lark.Tree) -> lark.Tree:
    """The tree without pass-through nodes; `tree` is changed in place. Iterative: a deep tree
    is what this is for."""
    root = _skip_pass_through(tree)
    stack = [root]
    while stack:
        node = stack.pop()
        for index, child in enumerate(node.children):
            if isinstance(child, lark.Tree):
                child = _skip_pass_through(child)
                node.children[index] = child
                stack.append(child)
    return root


def _skip_pass_through(node: lark.Tree) -> lark.Tree:
    while node.data in _PASS_THROUGH and len(node.children) == 1 and isinstance(node.children[0], lark.Tree):
        node = node.children[0]
    return node


def tree_problem(tree: lark.Tree) -> str:
    """Why a (flattened) tree is too deep to evaluate, or ""."""
    deepest, deepest_macros = 0, 0
    stack: list[tuple[lark.Tree, int, int]] = [(tree, 1, 0)]
    while stack:
        node, depth, macros = stack.pop()
        deepest, deepest_macros = max(deepest, depth), max(deepest_macros, macros)
        # A macro's arguments run once per element of its list (its first child); a chain
        # `l.map(...).filter(...)` runs one after the other and does not nest.
        inner = macros + 1 if node.data == "member_dot_arg" and _method_name(node) in _MACROS else macros
        stack.extend((child, depth + 1, inner if index else macros)
                     for index, child in enumerate(node.children) if isinstance(child, lark.Tree))
    if deepest > MAX_DEPTH:
        return f"the expression nests {deepest} levels deep; the limit is {MAX_DEPTH}"
    if deepest_macros > MAX_MACRO_NESTING:
        return (f"the expression nests {deepest_macros} comprehensions (map, filter, all, exists); "
                f"the limit is {MAX_MACRO_NESTING}")
    return ""


def _method_name(node: lark.Tree) -> str:
    name = node.children[1] if len(node.children) > 1 else None
    return str(name) if isinstance(name, lark.Token) else ""
