"""Statements that apply together, in one round trip to PostgreSQL.

A state change of a run is a few statements guarded by a condition the first one checks (a
lease, a status). PostgreSQL gets them in one message: one round trip, and one transaction of
their own when none is open (statements of one simple query commit or fail together). SQLite,
whose driver takes one statement at a time, runs them in turn in a transaction, and stops after
the first when it changed no row. Either way the same SQL runs; both engines accept it.
The query that ends the message may read rows as model instances (`columns_of`, `instances_of`:
a claim reads its call, run and function so).
"""
from __future__ import annotations

from functools import cache
from typing import Any

from django.db import connection, transaction
from django.db.models import Model


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



def columns_of(models: tuple[type[Model], ...]) -> str:
    """A SELECT list of every column of these models' tables, in order, for `instances_of`."""
    return ", ".join(f"{model._meta.db_table}.{connection.ops.quote_name(field.column)}"
                     for model in models for field in model._meta.concrete_fields)


def instances_of(models: tuple[type[Model], ...], row: tuple) -> list[Model]:
    """The model instances in a row read with `columns_of`, their values converted as the ORM
    converts them (a read sent in the same message as a change, where no queryset can go)."""
    instances, values = [], iter(row)
    for model in models:
        converted = []
        for column, converters in _converters(model, connection.vendor):
            value = next(values)
            for convert in converters:
                value = convert(value, column, connection)
            converted.append(value)
        instances.append(model.from_db(connection.alias, [field.attname for field in model._meta.concrete_fields], converted))
    return instances


@cache
def _converters(model: type[Model], vendor: str) -> list[tuple[Any, list]]:
    """Each column of the model with the converters the ORM applies to what the driver returns."""
    columns = [field.get_col(model._meta.db_table) for field in model._meta.concrete_fields]
    return [(column, connection.ops.get_db_converters(column) + column.get_db_converters(connection)) for column in columns]
