"""What hostile expressions cost now: refused at compile, or stopped by the evaluation budget.

No server: compiles and evaluates each expression in this process, as ingestion does, and prints
the time to compile (or refuse), the time to evaluate (wall and the thread's CPU, median of a
few rounds), and the outcome.

    .venv/bin/python bench/expressions.py [--rounds 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inngest_project.settings")

import django  # noqa: E402

django.setup()

from core import expressions  # noqa: E402
from core.expressions import ExpressionError, compile_expression, quoted  # noqa: E402

L = "event.data.l"
CASES = {
    "300 nested parentheses": "(" * 300 + "event.data.a == 1" + ")" * 300,
    "1.4 MB expression": "event.data.a == 1 || " * 70_000 + "true",
    "4 KB of 1+1+1…": ("1+" * 2048)[:4095] + "1",
    "1,000 tokens of 1+1+1… (longest parse)": ("1+" * 500)[:999] + "1",
    "4 KB list literal": "[" + ",".join(["1"] * 2040) + "] == []",
    "100 ids in a list (2 KB)": "event.data.id in [" + ",".join(f"'id-{n:015d}'" for n in range(100)) + "]",
    "date(1e300)": "date(1e300) > now()",
    "json_parse of 5,000-deep []": "json_parse(event.data.s).a == 1",
    "map in map over 60": f"{L}.map(a, {L}.map(b, 1)).size() > 0",
    "map in map in map over 60": f"{L}.map(a, {L}.map(b, {L}.map(c, 1))).size() > 0",
    "4 nested maps over 60": f"{L}.map(a, {L}.map(b, {L}.map(c, {L}.map(d, 1)))).size() > 0",
    "string doubled in a reduce": f"{L}.reduce(r, i, 'ab', r + r).size() > 0",
    "size of a 400,000-item list": "size(event.data.big) > 0",
    "plain, beside the 400,000 items": "event.data.a == 1",
    "exists over 60": f"{L}.exists(x, x == 59)",
}
EVENT = {"data": {"id": "id-000000000000099", "a": 1, "s": "[" * 5000 + "]" * 5000, "l": list(range(60)),
                  "big": [0] * 400_000}}


def measure(source: str, rounds: int) -> str:
    expressions._compile.cache_clear()
    started, started_cpu = time.perf_counter(), time.thread_time()
    try:
        expression = compile_expression(source)
    except ExpressionError as exc:
        return (f"refused in {1000 * (time.perf_counter() - started):6.1f} ms "
                f"({1000 * (time.thread_time() - started_cpu):5.1f} ms CPU): {str(exc)[:70]}")
    compiled_ms = 1000 * (time.perf_counter() - started)
    walls, cpus, outcome = [], [], ""
    for _ in range(rounds):
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            outcome = f"= {expression.evaluate(EVENT)!r}"
        except ExpressionError as exc:
            outcome = "error: " + str(exc).split(f"{quoted(source)}: ", 1)[-1]
        walls.append(1000 * (time.perf_counter() - wall))
        cpus.append(1000 * (time.thread_time() - cpu))
    return (f"compiled in {compiled_ms:6.1f} ms, evaluated in {statistics.median(walls):6.1f} ms "
            f"({statistics.median(cpus):5.1f} ms CPU): {outcome[:70]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    for name, source in CASES.items():
        print(f"{name:40} {measure(source, rounds)}")


if __name__ == "__main__":
    main()
