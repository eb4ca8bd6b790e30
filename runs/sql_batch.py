"""Statements that apply together, in one round trip to PostgreSQL.

A state change of a run is a few statements guarded by a condition the first one checks (a
lease, a status). PostgreSQL gets them in one message: one round trip, and one transaction of
their own when none is open (statements of one simple query commit or fail together). SQLite,
whose driver takes one statement at a time, runs them in turn in a transaction, and stops after
the first when it changed no row. Either way the same SQL runs; both engines accept it.
The query that ends the message may read rows as model instances (`columns_of`, `instances_of`:
a claim reads its call, run and function so). A change decided in Python on rows it locked first
is one transaction in two messages (`two_messages`): BEGIN, the locks and the read; then the
writes and COMMIT.

On PostgreSQL each statement is a prepared statement of the connection (PREPARE once, then
EXECUTE): these few statements run several times per workflow, and parsing and planning them
every time cost PostgreSQL more CPU than running them. INNGEST_DB_PREPARED_STATEMENTS=false turns
that off, for a pooler that hands one client several server sessions (PgBouncer in transaction
mode), where a session's prepared statements are not the client's.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, Error, connection, connections, transaction
from django.db.models import Model

_PLACEHOLDER = re.compile(r"%\((\w+)\)s")
# Statements are constants of the code (a few variants each): a connection never needs more.
# Past this many, a statement is sent as it is.
MAX_PREPARED = 200
# Prepared forms kept by the process: an event's statement has a variant per shape of its group
# (how many events, runs, keys), so their number is bounded only in practice.
MAX_FORMS = 2_000


@dataclass(frozen=True)
class Together:
    """Statements of one module to send in the message of another's change, with their own
    parameters (whose names must not clash with that change's, but those they share on purpose)."""

    statements: list[str]
    params: dict[str, Any]


def run_together(statements: list[str], params: dict[str, Any], result: str) -> tuple:
    """Run `statements` (the first is the guard) and then `result`, a query whose one row says
    what happened; on SQLite the row is that of `result`, or None when the guard changed nothing.
    On PostgreSQL `statements` may be empty: `result` is then one statement that writes (data-
    modifying CTEs, which SQLite has not)."""
    db = connections[DEFAULT_DB_ALIAS]  # once: each look-up through `connection` costs a thread-local read
    with db.cursor() as cursor:
        if db.vendor == "postgresql":
            _execute(db, cursor, [*statements, result], params)
            return cursor.fetchone()
        with transaction.atomic(savepoint=False):
            cursor.execute(statements[0], params)
            if cursor.rowcount == 0:
                return None
            for statement in statements[1:]:
                cursor.execute(statement, params)
            cursor.execute(result, params)
            return cursor.fetchone()


def fetch_rows(sql: str, params: dict[str, Any]) -> list[tuple]:
    """Every row of one query, as a prepared statement on PostgreSQL (a read made on every event)."""
    db = connections[DEFAULT_DB_ALIAS]
    with db.cursor() as cursor:
        if db.vendor == "postgresql":
            _execute(db, cursor, [sql], params)
        else:
            cursor.execute(sql, params)
        return cursor.fetchall()


class TwoMessages:
    """One transaction in two messages to PostgreSQL (`two_messages`): the first opens it, takes
    its locks and reads; the last writes and commits. Nothing else is sent in between."""

    def __init__(self, db: Any, frames: bool) -> None:
        self._db = db
        self._frames = frames  # whether the messages carry their own BEGIN and COMMIT
        self.is_open = False  # a BEGIN of ours was sent, and no COMMIT

    def read(self, statements: list[str], params: dict[str, Any], query: str) -> list[tuple]:
        """Run `statements` (locks), then `query`: every row of it."""
        with self._db.cursor() as cursor:
            if self._db.vendor != "postgresql":
                for statement in [*statements, query]:
                    cursor.execute(statement, params)
                return cursor.fetchall()
            self.is_open = self._frames
            _execute(self._db, cursor, [*statements, query], params, begin=self._frames)
            return cursor.fetchall()

    def commit(self, statements: list[str], params: dict[str, Any]) -> None:
        """Run `statements` and end the transaction."""
        if not statements and not self.is_open:
            return
        with self._db.cursor() as cursor:
            if self._db.vendor != "postgresql":
                for statement in statements:
                    cursor.execute(statement, params)
                return
            _execute(self._db, cursor, statements, params, commit=self.is_open)
            self.is_open = False


@contextmanager
def two_messages(with_orm: bool = False) -> Iterator[TwoMessages]:
    """A transaction whose reads hold their locks until its writes commit, sent to PostgreSQL as
    two messages, BEGIN in the first and COMMIT in the last, when no transaction is open and no
    ORM code runs inside it (`with_orm`: the ORM opens a transaction of its own, and runs
    on_commit callbacks at once outside one). Otherwise, and on SQLite, the statements run in
    transaction.atomic(). A transaction the block leaves without `commit` is rolled back."""
    db = connections[DEFAULT_DB_ALIAS]
    if db.vendor != "postgresql" or with_orm or not db.get_autocommit():
        with transaction.atomic():
            yield TwoMessages(db, frames=False)
        return
    messages = TwoMessages(db, frames=True)
    try:
        yield messages
    finally:
        if messages.is_open:
            _roll_back(db)


def _roll_back(db: Any) -> None:
    """End a transaction of ours that will not commit. A connection that cannot even roll back is
    closed: left open, its later statements would run in a transaction nobody ends."""
    try:
        with db.cursor() as cursor:
            cursor.execute("ROLLBACK")
    except Error:
        db.close()


def _execute(db: Any, cursor: Any, sqls: list[str], params: dict[str, Any], begin: bool = False, commit: bool = False) -> None:
    """Send `sqls` in one message; `begin`, `commit`: opened by BEGIN, ended by COMMIT."""
    if settings.INNGEST_DB_PREPARED_STATEMENTS:
        _run_prepared(db, cursor, sqls, params, begin, commit)
    else:
        cursor.execute(";\n".join(["BEGIN"] * begin + sqls + ["COMMIT"] * commit), params)


@lru_cache(maxsize=MAX_FORMS)
def _prepared_forms(sql: str) -> tuple[str, str, tuple[str, ...]]:
    """The statement's prepared name, its PREPARE (parameters numbered in the order of their
    first use) and the names of the `%(name)s` parameters its EXECUTE passes, in that order."""
    names = tuple(dict.fromkeys(_PLACEHOLDER.findall(sql)))
    name = "inngest_" + hashlib.blake2b(sql.encode(), digest_size=8).hexdigest()
    numbers = {n: i for i, n in enumerate(names, start=1)}
    body = _PLACEHOLDER.sub(lambda m: f"${numbers[m.group(1)]}", sql)  # a literal %% stays: the message is interpolated
    return name, f"PREPARE {name} AS {body}", names


def _execute_of(name: str, names: tuple[str, ...], params: dict[str, Any]) -> str:
    """`EXECUTE name(…)` with the statement's parameters: an int, a bool or None written as the
    literal psycopg2 would write (digits, true or false, NULL), anything else left to psycopg2
    as `%(name)s`. psycopg2 takes about a microsecond to adapt even an int (it looks for a
    `prepare` method that its adapter lacks, and clears the AttributeError); a workflow passes
    about fifty such values. Text, which needs quoting, is always psycopg2's."""
    if not names:
        return f"EXECUTE {name}"
    arguments = []
    for key in names:
        value = params[key]
        kind = type(value)
        if value is None:
            arguments.append("NULL")
        elif kind is bool:
            arguments.append("true" if value else "false")
        elif kind is int:
            arguments.append(str(value) if value >= 0 else f"({value})")
        else:
            arguments.append(f"%({key})s")
    return f"EXECUTE {name}({', '.join(arguments)})"


@dataclass
class _Prepared:
    """What one open DB-API connection has prepared, kept on the thread's Django connection.
    Prepared statements belong to the session and outlive a rolled-back transaction; a new
    session starts with none."""

    session: Any  # the DB-API connection these are prepared on
    names: set[str] | None  # None when not known (a message that failed may have run some of its PREPAREs)


def _run_prepared(db: Any, cursor: Any, sqls: list[str], params: dict[str, Any], begin: bool, commit: bool) -> None:
    """Run the statements as EXECUTEs of their prepared forms, after the PREPAREs of those this
    connection has not prepared yet: one message still, the first time too."""
    state = getattr(db, "inngest_prepared", None)
    if state is None or state.session is not db.connection:
        state = db.inngest_prepared = _Prepared(db.connection, set())
    if state.names is None:
        cursor.execute("SELECT name FROM pg_prepared_statements")
        state.names = {name for (name,) in cursor.fetchall()}
    prepared = state.names
    prepares, executes, new = [], [], set()
    for sql in sqls:
        name, prepare, names = _prepared_forms(sql)
        if name not in prepared and name not in new:
            if len(prepared) + len(new) >= MAX_PREPARED:
                executes.append(sql)
                continue
            prepares.append(prepare)
            new.add(name)
        executes.append(_execute_of(name, names, params))
    state.names = None  # until the message has run: if it fails, some of its PREPAREs may have
    cursor.execute(";\n".join(["BEGIN"] * begin + prepares + executes + ["COMMIT"] * commit), params)
    prepared.update(new)
    state.names = prepared


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
    db = connections[DEFAULT_DB_ALIAS]  # once: each look-up through `connection` costs a thread-local read
    instances, values = [], iter(row)
    for model in models:
        names, columns = _columns(model, db.vendor)
        converted = []
        for column, converters in columns:
            value = next(values)
            for convert in converters:
                value = convert(value, column, db)
            converted.append(value)
        instances.append(model.from_db(db.alias, names, converted))
    return instances


@cache
def _columns(model: type[Model], vendor: str) -> tuple[list[str], list[tuple[Any, list]]]:
    """The model's concrete fields' attribute names, and each column with the converters the ORM
    applies to what the driver returns."""
    fields = model._meta.concrete_fields
    columns = [field.get_col(model._meta.db_table) for field in fields]
    return ([field.attname for field in fields],
            [(column, connection.ops.get_db_converters(column) + column.get_db_converters(connection)) for column in columns])


def insert_select(instance: Model, prefix: str, tail: str = "", expressions: dict[str, str] | None = None) -> tuple[str, dict[str, Any]]:
    """`INSERT … SELECT <values> <tail>` of the instance's row (its generated id left to the
    database): the values the ORM would write, as parameters named `<prefix>_<column>`, but for
    the columns `expressions` gives an SQL expression of (a row inserted earlier in the message)."""
    db = connections[DEFAULT_DB_ALIAS]
    into, fields = _insert_into(type(instance), db.vendor)
    expressions = expressions or {}
    values, params = [], {}
    for field in fields:
        if field.column in expressions:
            values.append(expressions[field.column])
            continue
        name = f"{prefix}_{field.column}"
        values.append(f"%({name})s")
        params[name] = _saved(field, instance, db)
    return f"{into} SELECT {', '.join(values)} {tail}".rstrip(), params


@cache
def _insert_into(model: type[Model], vendor: str) -> tuple[str, list[Any]]:
    """`INSERT INTO table (columns)` of every column but the generated id, and those fields."""
    fields = [field for field in model._meta.concrete_fields if field is not model._meta.auto_field]
    return f"INSERT INTO {model._meta.db_table} ({', '.join(connection.ops.quote_name(f.column) for f in fields)})", fields


def insert_values(instances: list[Model], prefix: str, tail: str = "",
                  prepared: list[dict[str, Any]] | None = None) -> tuple[str, dict[str, Any]]:
    """`INSERT … VALUES (…), … <tail>` of these rows of one model (their generated ids left to
    the database), the values the ORM would write as parameters named `<prefix><n>_<column>`;
    `prepared`: for each instance, values by column that are already what the ORM would write
    (a JSON text made once for several rows), used instead of the instance's."""
    db = connections[DEFAULT_DB_ALIAS]
    into, fields = _insert_into(type(instances[0]), db.vendor)
    rows, params = [], {}
    for n, instance in enumerate(instances):
        names = [f"{prefix}{n}_{field.column}" for field in fields]
        rows.append(f"({', '.join(f'%({name})s' for name in names)})")
        given = prepared[n] if prepared else {}
        params |= {name: given[field.column] if field.column in given else _saved(field, instance, db)
                   for name, field in zip(names, fields)}
    return f"{into} VALUES {', '.join(rows)} {tail}".rstrip(), params


def _saved(field: Any, instance: Model, db: Any) -> Any:
    """The value the ORM would write for this field of the instance."""
    return field.get_db_prep_save(getattr(instance, field.attname), db)
