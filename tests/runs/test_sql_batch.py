"""Statements sent together (runs/sql_batch.py): on PostgreSQL as prepared statements of the
connection, one message each time, the first time too."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from django.db import DataError, connection, transaction
from django.test.utils import CaptureQueriesContext

from runs.sql_batch import run_together
from tests.factories import make_function

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's"),
]

UPDATE = "UPDATE functions_function SET name = %(name)s WHERE id = %(id)s"
READ = "SELECT name FROM functions_function WHERE id = %(id)s"
DIVIDE = "SELECT name, 100 / %(divisor)s FROM functions_function WHERE id = %(id)s"


def prepared_names() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM pg_prepared_statements WHERE name LIKE 'inngest%%'")
        return {name for (name,) in cursor.fetchall()}


def test_statements_are_prepared_in_their_first_message_and_executed_after() -> None:
    function = make_function()
    before = prepared_names()
    with CaptureQueriesContext(connection) as first:
        assert run_together([UPDATE], {"name": "one", "id": str(function.id)}, READ) == ("one",)
    with CaptureQueriesContext(connection) as second:
        assert run_together([UPDATE], {"name": "two", "id": str(function.id)}, READ) == ("two",)
    assert len(first) == 1 and first[0]["sql"].count("PREPARE ") == 2
    assert len(second) == 1 and "PREPARE" not in second[0]["sql"] and second[0]["sql"].count("EXECUTE ") == 2
    assert len(prepared_names() - before) == 2


def test_a_message_that_failed_after_its_prepares_leaves_the_connection_usable() -> None:
    """The PREPAREs of a failed message may have run (they outlive its transaction): the next
    message must neither prepare them again (an error) nor miss them."""
    function = make_function()
    with pytest.raises(DataError), transaction.atomic():
        run_together([UPDATE], {"name": "x", "id": str(function.id), "divisor": 0}, DIVIDE)
    assert run_together([UPDATE], {"name": "y", "id": str(function.id), "divisor": 4}, DIVIDE) == ("y", 25)


def test_prepared_statements_can_be_turned_off_for_a_pooler(settings) -> None:
    settings.INNGEST_DB_PREPARED_STATEMENTS = False
    function = make_function()
    with CaptureQueriesContext(connection) as queries:
        assert run_together([UPDATE], {"name": "z", "id": str(function.id)}, READ) == ("z",)
    assert len(queries) == 1 and "EXECUTE" not in queries[0]["sql"] and "PREPARE" not in queries[0]["sql"]


ECHO = ("SELECT CAST(%(small)s AS integer), CAST(%(negative)s AS bigint), CAST(%(large)s AS bigint), "
        "CAST(%(yes)s AS boolean), CAST(%(no)s AS boolean), CAST(%(nothing)s AS text), "
        "CAST(%(aware)s AS timestamptz), CAST(%(naive)s AS timestamp), CAST(%(text)s AS text), "
        "CAST(%(offset)s AS timestamptz)")


@pytest.mark.parametrize("prepared", [True, False], ids=["written by us", "adapted by psycopg2"])
def test_an_executes_arguments_come_back_as_they_were_sent(settings, prepared: bool) -> None:
    """An EXECUTE's ints, bools and None are written as literals by sql_batch, the rest (text,
    datetimes) by psycopg2 (runs/sql_batch.py _execute_of): both read back the same values, and
    text with quotes and a minus sign before a number stays text."""
    settings.INNGEST_DB_PREPARED_STATEMENTS = prepared
    aware = datetime(2026, 12, 7, 23, 39, 12, 179240, tzinfo=timezone.utc)
    offset = datetime(1999, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    values = {"small": 0, "negative": -9_007_199_254_740_993, "large": 2**62, "yes": True, "no": False, "nothing": None,
              "aware": aware, "naive": datetime(999, 1, 2, 3, 4, 5, 6), "text": "it's -- 1; DROP TABLE x", "offset": offset}
    with CaptureQueriesContext(connection) as queries:
        row = run_together([], values, ECHO)
    assert row == (0, -9_007_199_254_740_993, 2**62, True, False, None, aware, datetime(999, 1, 2, 3, 4, 5, 6),
                   "it's -- 1; DROP TABLE x", offset)
    assert ("EXECUTE" in queries[-1]["sql"]) is prepared
