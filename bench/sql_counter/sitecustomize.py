"""Counts the SQL a bench's server processes send, per process, without touching the server's code.

bench/process_cost.py puts this directory on PYTHONPATH and names a directory in
BENCH_SQL_COUNT_DIR; Python imports `sitecustomize` at start-up, so every Django process of the
stack (gunicorn, celery workers and their forked pool) wraps each database connection it opens.
Each process writes its counts into a small memory-mapped file of its own (no system call per
statement), which the bench reads before and after a load.
"""
from __future__ import annotations

import mmap
import os
import struct
import sys

COUNTS = ("statements", "transactions")
_LAYOUT = struct.Struct(f"<{len(COUNTS)}q")
_directory = os.environ.get("BENCH_SQL_COUNT_DIR")
_state: dict[str, object] = {"pid": None, "map": None, "counts": [0] * len(COUNTS), "is_open": False}


def _counts_map() -> mmap.mmap:
    """This process's file; a forked pool child opens its own instead of writing the parent's."""
    if _state["pid"] != os.getpid():
        path = os.path.join(_directory, f"{os.getpid()}.counts")
        with open(path, "wb") as file:
            file.write(b"\0" * _LAYOUT.size)
        with open(os.path.join(_directory, f"{os.getpid()}.argv"), "w") as file:
            file.write(" ".join(sys.argv))
        with open(path, "r+b") as file:
            _state["map"] = mmap.mmap(file.fileno(), _LAYOUT.size)
        _state["pid"], _state["counts"] = os.getpid(), [0] * len(COUNTS)
    return _state["map"]


def _count(execute, sql, params, many, context):
    connection = context["connection"]
    counts_map = _counts_map()
    counts = _state["counts"]
    counts[0] += 1
    if connection.in_atomic_block:
        _state["is_open"] = True  # psycopg2 sent BEGIN before this statement; a COMMIT will follow
    counts_map[:] = _LAYOUT.pack(*counts)
    return execute(sql, params, many, context)


def _counting_end(end):
    """commit/rollback of a transaction that ran a statement: one transaction (BEGIN + its end)."""
    def counted():
        if _state["is_open"]:
            _state["is_open"] = False
            _state["counts"][1] += 1
            _counts_map()[:] = _LAYOUT.pack(*_state["counts"])
        return end()
    return counted


def _wrap(sender, connection, **kwargs):
    if not getattr(connection, "_bench_counted", False):
        connection.execute_wrappers.append(_count)
        connection.commit = _counting_end(connection.commit)
        connection.rollback = _counting_end(connection.rollback)
        connection._bench_counted = True


if _directory:
    try:
        from django.db.backends.signals import connection_created
    except ImportError:  # a process without Django (DBOS's own virtualenv): nothing to count
        pass
    else:
        connection_created.connect(_wrap, weak=False)
