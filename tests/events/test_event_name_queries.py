"""Finding events by name with a fixed leading part is an index range on PostgreSQL, whatever the
database's collation (the name index's pattern operator class)."""
from __future__ import annotations

import pytest
from django.db import connection

from events.models import Event
from events.queries import EventFilter


def _plan(queryset) -> str:
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        # Tiny tables are cheaper to scan: forbid the scan so that the plan shows whether the index can serve.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.mark.django_db
@pytest.mark.parametrize("pattern", ["app/*", "app/*.done"])
def test_a_wildcard_with_a_fixed_leading_part_is_an_index_range(pattern: str) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("operator classes are PostgreSQL's")
    newest = EventFilter(name=pattern).apply(Event.objects.order_by("-internal_id"))[:50]
    plan = _plan(newest)
    assert "event_name_newest" in plan and "~>=~ 'app/'" in plan, plan


@pytest.mark.django_db
def test_an_exact_name_and_its_cursor_are_one_index_range() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("operator classes are PostgreSQL's")
    page = EventFilter(name="app/user.created", before="01J0000000000000000000000").apply(Event.objects.order_by("-internal_id"))[:50]
    plan = _plan(page)
    assert "Index Scan using event_name_newest" in plan and "internal_id" in plan.split("Index Cond")[1], plan
    assert "Sort" not in plan, plan  # the index gives the order
