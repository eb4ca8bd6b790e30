"""Events as CEL values, with Inngest's lenient reading (protocol.md §4.9), and back.

A missing attribute reads as null instead of failing the whole expression. Only the parts of an
event that an expression reads are converted (`readable_part`): converting is the costly step
(an event may hold a 3 MiB array), and an expression can see nothing else.
"""
from __future__ import annotations

import math
from typing import Any

import lark
from celpy import celtypes

from core.expression_limits import spend_on_size

NUMBERS = (celtypes.IntType, celtypes.UintType, celtypes.DoubleType)


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
    """A JSON-like Python value as celpy values (bool before int: bool is an int in Python).
    Each container charges the running evaluation's budget for its items."""
    if isinstance(value, str):
        return celtypes.StringType(value)
    if value is None:
        return celtypes.NullType()
    if isinstance(value, bool):
        return celtypes.BoolType(value)
    if isinstance(value, int):
        # int.__new__: celpy's IntType() re-checks the range through a wrapper built per call,
        # about 30 µs a number; the range is checked here.
        return int.__new__(celtypes.IntType, value) if -(2**63) <= value < 2**63 else celtypes.DoubleType(_as_double(value))
    if isinstance(value, float):
        return celtypes.DoubleType(value)
    if isinstance(value, dict):
        spend_on_size(value)
        return LenientMap({celtypes.StringType(str(k)): to_cel(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        spend_on_size(value)
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


# --- what an expression reads ------------------------------------------------------------------

ROOTS = ("event", "async")


class _Whole:
    def __repr__(self) -> str:
        return "WHOLE"


WHOLE: Any = _Whole()  # a path ends here: the whole value below it is read
_CHAIN = frozenset({"member_dot", "member", "primary", "ident"})


def read_paths(tree: lark.Tree) -> dict[str, Any]:
    """For `event` and `async`, a tree of the attributes the expression reads (`WHOLE` where it
    reads a value as a whole: compared, indexed, passed to a function, iterated)."""
    paths: dict[str, list[tuple[str, ...]]] = {root: [] for root in ROOTS}
    stack: list[tuple[lark.Tree, bool]] = [(tree, False)]
    while stack:
        node, is_extended = stack.pop()
        path = _chain_path(node) if node.data in _CHAIN else None
        if path and not is_extended and path[0] in paths:
            paths[path[0]].append(path[1:])
        for index, child in enumerate(node.children):
            if isinstance(child, lark.Tree):
                # The first child of a chain is the chain's prefix: only the longest is read.
                stack.append((child, path is not None and index == 0))
    return {root: _path_tree(found) for root, found in paths.items()}


def _chain_path(node: lark.Tree) -> tuple[str, ...] | None:
    """`a.b.c` as ("a", "b", "c"); None when the chain does not start at a name."""
    names: list[str] = []
    while True:
        if node.data == "member_dot" and len(node.children) == 2 and isinstance(node.children[0], lark.Tree):
            names.append(str(node.children[1]))
            node = node.children[0]
        elif node.data in ("member", "primary") and len(node.children) == 1 and isinstance(node.children[0], lark.Tree):
            node = node.children[0]
        elif node.data == "ident" and node.children:
            names.append(str(node.children[0]))
            return tuple(reversed(names))
        else:
            return None


def _path_tree(paths: list[tuple[str, ...]]) -> Any:
    tree: Any = {}
    for path in sorted(paths, key=len):
        node = tree
        for index, name in enumerate(path):
            if node is WHOLE:
                break
            if index == len(path) - 1:
                node[name] = WHOLE
            else:
                node = node.setdefault(name, {})
        if not path:
            return WHOLE
    return tree


def readable_part(value: Any, paths: Any) -> Any:
    """`value` with only the attributes in `paths` (values read whole are kept whole)."""
    if paths is WHOLE or not isinstance(value, dict):
        return value
    return {name: readable_part(value[name], below) for name, below in paths.items() if name in value}
