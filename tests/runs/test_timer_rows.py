"""The timer tick: a failing part, or a failing row, holds up nothing else.

The failure is a real one: flow control's counters on a Redis that refuses connections, which
only the rows of functions with a rate limit need.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Iterator

import pytest
from django.test import override_settings
from django.utils import timezone
from ulid import ULID

from executor import timers
from functions.models import Function
from runs import creation
from runs.due_rows import RETRY_AFTER
from runs.flow_control import counters as counters_module
from runs.models import Debounce, EventBatch, PendingCall, Run, RunStatus, Step, Wait, WaitKind
from tests.factories import make_function
from tests.sdk_app import free_port

pytestmark = pytest.mark.django_db

RATE_LIMITED = {"rateLimit": {"limit": 1, "period": "1m"}}


@pytest.fixture
def redis_down() -> Iterator[None]:
    """Flow control's counters on a Redis server that is not there (connections are refused)."""
    with override_settings(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"):
        counters_module._counters = None  # the process's client is made from REDIS_URL on first use
        yield
    counters_module._counters = None


def configured(config: dict, event: str = "test/event", expression: str = "") -> Function:
    function = make_function(event=event, expression=expression)
    function.config = config
    function.save()
    return function


def due_debounce(config: dict, now: datetime) -> Debounce:
    return Debounce.objects.create(
        id=str(ULID()), function=configured({"debounce": {"period": "1s"}, **config}), key="k",
        payload={"name": "test/event", "data": {}}, first_at=now - timedelta(seconds=5), due_at=now - timedelta(seconds=1),
    )


def due_batch(config: dict, now: datetime) -> EventBatch:
    return EventBatch.objects.create(
        id=str(ULID()), function=configured({"batchEvents": {"maxSize": 10, "timeout": "1s"}, **config}), key="k",
        payloads=[{"name": "test/event", "data": {}}], opened_at=now - timedelta(seconds=5), due_at=now - timedelta(seconds=1),
    )


def running_run(function: Function | None = None) -> Run:
    (run,) = creation.create_runs([creation.RunRequest(function or make_function(), None, [{"name": "test/event"}], str(ULID()))])
    Run.objects.filter(id=run.id).update(status=RunStatus.RUNNING)
    PendingCall.objects.filter(run=run).delete()
    return Run.objects.select_related("function").get(id=run.id)


def due_wait(run: Run, kind: str, now: datetime) -> Wait:
    return Wait.objects.create(run=run, kind=kind, step_id=f"{kind}-1", step_name=kind, event_name="",
                               expires_at=now - timedelta(seconds=1))


def test_with_redis_down_the_tick_still_wakes_sleeps_starts_what_needs_no_redis_and_sends_due_calls(
        redis_down: None, caplog: pytest.LogCaptureFixture) -> None:
    now = timezone.now()
    limited, plain = due_debounce(RATE_LIMITED, now), due_debounce({}, now)
    limited_batch, plain_batch = due_batch(RATE_LIMITED, now), due_batch({}, now)
    sleeping = due_wait(running_run(), WaitKind.SLEEP, now)
    (unsent,) = creation.create_runs([creation.RunRequest(make_function(), None, [{"name": "test/event"}], "unsent")])
    PendingCall.objects.filter(run=unsent).update(enqueued_at=None, due_at=now - timedelta(seconds=1))

    timers.tick_timers(now)

    assert Step.objects.filter(run=sleeping.run, op="Sleep").exists()
    assert Run.objects.filter(function=plain.function).count() == 1
    assert Run.objects.filter(function=plain_batch.function).count() == 1
    for row in (limited, limited_batch):  # kept, and behind the others from now on
        assert not Run.objects.filter(function=row.function).exists()
        assert type(row).objects.get(id=row.id).due_at == now + RETRY_AFTER
    assert PendingCall.objects.get(run=unsent).enqueued_at == now  # the sweeper ran after them
    assert f"timer tick: start_due_debounces: Debounce {limited.id} failed" in caplog.text
    assert f"timer tick: start_due_batches: EventBatch {limited_batch.id} failed" in caplog.text


def test_a_timeout_that_cannot_be_applied_does_not_hold_up_the_others(redis_down: None) -> None:
    now = timezone.now()
    troubled, other = make_function(), make_function()
    # Cancelling a run of `troubled` starts a rate-limited handler run, which needs Redis.
    configured(RATE_LIMITED, event="inngest/function.cancelled", expression=f"event.data.function_id == '{troubled.slug}'")
    stuck = due_wait(running_run(troubled), WaitKind.TIMEOUT, now)
    fine = due_wait(running_run(other), WaitKind.TIMEOUT, now)

    timers.tick_timers(now)

    assert Run.objects.get(id=fine.run_id).status == RunStatus.CANCELLED
    assert Run.objects.get(id=stuck.run_id).status == RunStatus.RUNNING
    assert Wait.objects.get(id=stuck.id).expires_at == now + RETRY_AFTER


def test_a_row_that_failed_is_tried_again_and_goes_through_once_redis_is_back() -> None:
    now = timezone.now()
    row = due_debounce(RATE_LIMITED, now)
    with override_settings(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"):
        counters_module._counters = None
        timers.tick_timers(now)
    counters_module._counters = None
    assert Debounce.objects.filter(id=row.id).exists()
    timers.tick_timers(now + RETRY_AFTER)
    assert not Debounce.objects.filter(id=row.id).exists()
    assert Run.objects.get(function=row.function).status == RunStatus.QUEUED
