"""Waits resume a run once: the first of a matching event and the timeout wins."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from runs import creation, lifecycle
from runs.intake import ingest
from runs.models import PendingCall, Run, RunStatus, Step, Wait
from runs.waits import expire_waits, resume
from tests.factories import make_function

pytestmark = pytest.mark.django_db


def waiting_run(expression: str = "", expires_in: timedelta = timedelta(hours=1)) -> Wait:
    function = make_function()
    (run,) = creation.create_runs([creation.RunRequest(function, None, [{"name": "t", "data": {"id": 7}}], "k")])
    Run.objects.filter(id=run.id).update(status=RunStatus.RUNNING)
    PendingCall.objects.filter(run=run).delete()
    return Wait.objects.create(run=run, step_id="w1", step_name="approval", event_name="app/approved",
                               expression=expression, expires_at=timezone.now() + expires_in)


def test_matching_event_resumes_the_run_with_the_event() -> None:
    wait = waiting_run("event.data.id == async.data.id")
    ingest(b'[{"name": "app/approved", "data": {"id": 8}}, {"name": "app/approved", "data": {"id": 7}, "id": "yes"}]')
    step = Step.objects.get(run=wait.run)
    assert step.output["data"] == {"id": 7} and step.output["id"] == "yes"
    assert not Wait.objects.exists()
    assert PendingCall.objects.get(run=wait.run).step_target == "step"


def test_event_of_another_name_does_not_resume() -> None:
    wait = waiting_run()
    ingest(b'{"name": "app/rejected", "data": {}}')
    assert Wait.objects.filter(id=wait.id).exists() and not Step.objects.exists()


def test_timed_out_wait_resumes_with_null() -> None:
    wait = waiting_run(expires_in=timedelta(seconds=-1))
    assert expire_waits() == 1
    assert Step.objects.get(run=wait.run).output is None


def test_a_wait_resumes_only_once() -> None:
    wait = waiting_run()
    assert resume(wait, {"name": "first"}) is True
    assert resume(wait, None) is False  # the timeout arriving second changes nothing
    assert [s.output for s in Step.objects.filter(run=wait.run)] == [{"name": "first"}]


def test_cancelling_a_run_removes_its_waits() -> None:
    wait = waiting_run()
    lifecycle.cancel_run(wait.run)
    assert not Wait.objects.exists()


@pytest.mark.parametrize("expression, key", [
    ("event.data.order == async.data.order", ("data.order", '"o-1"')),
    ("async.data.ref == event.data.n", ("data.ref", "7")),
    ("event.data.f == async.data.f", ("data.f", "2")),  # 2.0 keys like 2: CEL compares them equal
    ("event.data.order == async.data.order && async.data.ok", ("", "")),
    ("event.data.missing == async.data.x", ("", "")),
    ("event.data.a == event.data.b", ("", "")),
    ("", ("", "")),
])
def test_equality_conditions_get_an_index_key(expression: str, key: tuple) -> None:
    from runs.wait_matching import equality_key

    trigger = {"name": "t", "data": {"order": "o-1", "n": 7, "f": 2.0}}
    assert equality_key(expression, trigger) == key


def test_indexed_wait_is_found_only_by_an_event_with_the_value() -> None:
    wait = waiting_run("event.data.id == async.data.id")
    Wait.objects.filter(id=wait.id).update(match_path="data.id", match_value="7")
    ingest(b'{"name": "app/approved", "data": {"id": 8}}')
    assert Wait.objects.filter(id=wait.id).exists()
    ingest(b'{"name": "app/approved", "data": {"id": 7.0}}')
    assert not Wait.objects.filter(id=wait.id).exists()
    assert Step.objects.get(run=wait.run).output["data"] == {"id": 7.0}
