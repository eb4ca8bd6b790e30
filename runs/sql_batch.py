"""Statements that apply together, in one round trip to PostgreSQL.

A state change of a run is a few statements guarded by a condition the first one checks (a
lease, a status). PostgreSQL gets them in one message: one round trip, and one transaction of
their own when none is open (statements of one simple query commit or fail together). SQLite,
whose driver takes one statement at a time, runs them in turn in a transaction, and stops after
the first when it changed no row. Either way the same SQL runs; both engines accept it.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from django.db import connection, transaction


def run_together(statements: list[str], params: dict[str, Any], result: str) -> tuple:
    """Run `statements` (the first is the guard) and then `result`, a query whose one row says
    what happened; on SQLite the row is that of `result`, or None when the guard changed nothing."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(";\n".join([*statements, result]), params)
            return cursor.fetchone()
        with transaction.atomic(savepoint=False):
            cursor.execute(statements[0], params)
            if cursor.rowcount == 0:
                return None
            for statement in statements[1:]:
                cursor.execute(statement, params)
            cursor.execute(result, params)
            return cursor.fetchone()


def for_update(select: str) -> list[str]:
    """A row lock taken with SELECT … FOR UPDATE where the engine has row locks; SQLite has none
    to take (a writing transaction locks the whole database)."""
    return [f"{select} FOR UPDATE"] if connection.features.has_select_for_update else []


@contextmanager
def sent_before_next_query(statement: str, params: Sequence[Any]) -> Iterator[None]:
    """Send `statement` (positional %s parameters) in the same message as the block's first
    query, before it: a change and the read that follows it (an ORM query, whose model
    instances it builds as usual) in one round trip. SQLite runs `statement` alone, first."""
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(statement, params)
        yield
        return
    is_sent = False
    # Open before the wrapper goes on: wrappers that the opening adds (connection_created) must
    # not be the one execute_wrapper takes off at the end.
    connection.ensure_connection()

    def prepend(execute, sql, query_params, many, context):
        nonlocal is_sent
        if is_sent or many:
            return execute(sql, query_params, many, context)
        is_sent = True
        return execute(f"{statement};\n{sql}", (*params, *(query_params or ())), many, context)

    with connection.execute_wrapper(prepend):
        yield
