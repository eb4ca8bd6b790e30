"""UI pages without a browser: the number of queries does not grow with the rows shown, and
production refuses anonymous users."""
from __future__ import annotations

import pytest
from django.test import Client, override_settings
from django.utils import timezone

from events.models import Event
from runs.models import Run, RunStatus, StepAttempt
from tests.factories import make_function

pytestmark = pytest.mark.django_db


def make_runs(count: int) -> list[Run]:
    functions = [make_function(), make_function()]
    events = Event.objects.bulk_create([
        Event(internal_id=f"01EVENT{i:019d}", name=f"test/e{i % 3}", event_id=f"e{i}", data={}, user={}, ts=0)
        for i in range(count)
    ])
    return Run.objects.bulk_create([
        Run(id=f"01RUN{i:021d}", function=functions[i % 2], event=events[i], events=[{"name": "x"}],
            status=[RunStatus.COMPLETED, RunStatus.FAILED][i % 2])
        for i in range(count)
    ])


@override_settings(INNGEST_OPERATOR_LOGIN=False)
def test_the_runs_list_takes_the_same_few_queries_for_many_rows(django_assert_max_num_queries) -> None:
    runs = make_runs(120)
    client = Client()
    with django_assert_max_num_queries(4):
        page = client.get("/runs/")
    assert page.status_code == 200 and runs[-1].id in page.content.decode()
    assert "Older runs" in page.content.decode()  # 50 per page
    with django_assert_max_num_queries(4):
        filtered = client.get("/runs/", {"status": "failed", "event_name": "test/e1", "since": "2000-01-01T00:00"})
    assert filtered.status_code == 200


@override_settings(INNGEST_OPERATOR_LOGIN=False)
def test_a_run_page_takes_the_same_few_queries_for_many_calls(django_assert_max_num_queries) -> None:
    (run,) = make_runs(1)
    now = timezone.now()
    StepAttempt.objects.bulk_create([
        StepAttempt(run=run, step_target="step", attempt=0, status_code=206, opcode="StepRun", started_at=now, ended_at=now)
        for _ in range(60)
    ])
    with django_assert_max_num_queries(8):
        page = Client().get(f"/runs/{run.id}")
    assert page.status_code == 200 and page.content.decode().count("HTTP 206 StepRun") == 60


@override_settings(INNGEST_OPERATOR_LOGIN=True)
def test_anonymous_users_are_sent_to_sign_in_in_production() -> None:
    answer = Client().get("/runs/")
    assert answer.status_code == 302 and answer["Location"].startswith("/login/?next=/runs/")
