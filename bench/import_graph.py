"""Prints the import graph between the project's top-level packages: one line per pair,
`from -> to  N`, counting every import statement (module level and inside functions) in the
source. Tests, benchmarks and migrations are left out: they are not part of the layering.

    .venv/bin/python bench/import_graph.py

Then a line per import cycle found between the packages (none is the goal; `lint-imports`
enforces the layers in CI).
"""
from __future__ import annotations

import ast
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LEFT_OUT = {"tests", "bench", "migrations", ".venv", "node_modules"}


def top_level_packages() -> list[str]:
    return sorted(
        path.parent.name for path in ROOT.glob("*/__init__.py") if path.parent.name not in LEFT_OUT
    )


def imported_modules(tree: ast.AST, package: str) -> list[str]:
    """Every absolute module an import statement names (relative imports stay in the package)."""
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.append(package if node.level else (node.module or ""))
    return names


def edges(packages: list[str]) -> Counter[tuple[str, str]]:
    counts: Counter[tuple[str, str]] = Counter()
    for package in packages:
        for path in (ROOT / package).rglob("*.py"):
            if LEFT_OUT.intersection(path.relative_to(ROOT).parts):
                continue
            tree = ast.parse(path.read_text(), str(path))
            for module in imported_modules(tree, package):
                target = module.split(".")[0]
                if target in packages and target != package:
                    counts[(package, target)] += 1
    return counts


def cycles(counts: Counter[tuple[str, str]], packages: list[str]) -> list[list[str]]:
    """Strongly connected groups of more than one package (Tarjan's algorithm)."""
    graph = {p: sorted(t for (f, t) in counts if f == p) for p in packages}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for package in packages:
        if package not in index:
            visit(package)
    return groups


def main() -> int:
    packages = top_level_packages()
    counts = edges(packages)
    for (source, target), count in sorted(counts.items()):
        print(f"{source:>16} -> {target:<16} {count:>3}")
    found = cycles(counts, packages)
    for group in found:
        print("cycle:", " ".join(group))
    if not found:
        print("no cycle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
