"""Cron triggers: parsing, periodic tasks kept in step with syncs, one run per tick."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from django_celery_beat.models import PeriodicTask

from functions.cron import CronError, parse_cron
from functions.models import Trigger
from functions.schedules import sync_cron_schedules
from runs.cron_runs import start_cron_run
from runs.models import Run
from tests.factories import make_function


@pytest.mark.parametrize("expression, zone, minute", [
    ("*/5 * * * *", "UTC", "*/5"), ("TZ=Europe/Paris 0 9 * * 1-5", "Europe/Paris", "0"),
    ("CRON_TZ=America/New_York 30 * * * *", "America/New_York", "30"),
])
def test_cron_is_parsed_with_its_zone(expression: str, zone: str, minute: str) -> None:
    cron = parse_cron(expression)
    assert (cron.zone, cron.minute) == (zone, minute)


@pytest.mark.parametrize("expression", ["@daily", "* * *", "61 * * * *", "TZ=Nowhere/Land * * * * *"])
def test_invalid_cron_is_refused(expression: str) -> None:
    with pytest.raises(CronError):
        parse_cron(expression)


@pytest.mark.django_db
def test_periodic_tasks_follow_the_function_cron_triggers() -> None:
    function = make_function()
    Trigger.objects.create(function=function, cron="*/5 * * * *")
    sync_cron_schedules(function)
    (task,) = PeriodicTask.objects.filter(task="runs.cron_tick")
    assert task.crontab.minute == "*/5" and str(function.id) in task.args
    Trigger.objects.filter(function=function, cron="*/5 * * * *").update(cron="0 * * * *")
    sync_cron_schedules(function)
    assert [t.crontab.minute for t in PeriodicTask.objects.filter(task="runs.cron_tick")] == ["0"]
    function.is_archived = True
    sync_cron_schedules(function)
    assert not PeriodicTask.objects.filter(task="runs.cron_tick").exists()


@pytest.mark.django_db
def test_a_tick_fired_twice_starts_one_run() -> None:
    function = make_function()
    Trigger.objects.create(function=function, cron="* * * * *")
    tick = datetime(2026, 11, 24, 12, 0, 30, tzinfo=timezone.utc)
    assert start_cron_run(str(function.id), "* * * * *", tick) is True
    assert start_cron_run(str(function.id), "* * * * *", tick) is False  # a second beat, same minute
    (run,) = Run.objects.filter(function=function)
    assert run.events[0]["name"] == "inngest/scheduled.timer"
    assert run.events[0]["data"]["scheduledAt"] == "2026-11-24T12:00:00Z"


@pytest.mark.django_db
def test_a_tick_for_a_removed_trigger_does_nothing() -> None:
    function = make_function()
    assert start_cron_run(str(function.id), "* * * * *") is False
    assert not Run.objects.exists()


@pytest.mark.django_db
def test_the_old_cron_task_name_still_starts_the_run() -> None:
    """Messages queued and beat rows written before the rename carry `functions.fire_cron`."""
    import runs.tasks  # noqa: F401 - registers the tasks, as the worker's autodiscovery does
    from inngest_project.celery import app

    function = make_function()
    Trigger.objects.create(function=function, cron="* * * * *")
    app.tasks["functions.fire_cron"](str(function.id), "* * * * *")
    assert Run.objects.filter(function=function).count() == 1
