"""The sweeper: due calls with no message in flight are sent again, others are left alone."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Callable, Iterator

import pytest
import redis
from celery import Celery, current_app
from django.utils import timezone

from runs import creation, maintenance, pending_calls
from runs.models import PendingCall
from runs.pending_calls import lost_message_after, resend_unsent_calls
from tests.factories import make_function
from tests.stacks import stack_redis_url

pytestmark = pytest.mark.django_db


def pending_call(**fields: object) -> PendingCall:
    function = make_function()
    (run,) = creation.create_runs([creation.RunRequest(function, None, [], f"k-{function.slug}")])
    call = run.pending_calls.get()
    PendingCall.objects.filter(id=call.id).update(**fields)
    return PendingCall.objects.get(id=call.id)


def test_due_call_whose_message_was_lost_is_sent_again() -> None:
    now = timezone.now()
    call = pending_call(enqueued_at=now - lost_message_after() - timedelta(seconds=1), due_at=now - timedelta(minutes=1))
    assert resend_unsent_calls(now) == 1
    assert PendingCall.objects.get(id=call.id).enqueued_at == now
    assert resend_unsent_calls(now) == 0  # marked: the next tick does not send it twice


def test_call_with_a_recent_message_is_left_alone() -> None:
    now = timezone.now()
    pending_call(enqueued_at=now - timedelta(seconds=1), due_at=now - timedelta(seconds=1))
    assert resend_unsent_calls(now) == 0


def test_call_not_due_yet_is_left_alone() -> None:
    now = timezone.now()
    pending_call(enqueued_at=None, due_at=now + timedelta(minutes=5))
    assert resend_unsent_calls(now) == 0


def test_due_call_never_sent_is_sent() -> None:
    now = timezone.now()
    pending_call(enqueued_at=None, due_at=now)
    assert resend_unsent_calls(now) == 1


def test_call_of_a_dead_worker_is_freed_and_sent_once_its_lease_ran_out() -> None:
    now = timezone.now()
    call = pending_call(lease_owner="dead-worker", lease_expires_at=now - timedelta(seconds=1),
                        enqueued_at=now - timedelta(minutes=5), due_at=now - timedelta(minutes=5))
    assert resend_unsent_calls(now) == 1
    freed = PendingCall.objects.get(id=call.id)
    assert (freed.lease_owner, freed.lease_expires_at) == ("", None)
    assert pending_calls.claim_call(call.id, "new-worker", 30) is not None


def test_call_held_by_a_live_worker_is_left_alone() -> None:
    now = timezone.now()
    pending_call(lease_owner="live-worker", lease_expires_at=now + timedelta(seconds=20),
                 enqueued_at=now - timedelta(minutes=5), due_at=now - timedelta(minutes=5))
    assert resend_unsent_calls(now) == 0


def test_the_old_timer_task_name_still_ticks() -> None:
    """Messages queued and beat rows written before the rename carry `executor.sweep_due_calls`."""
    import executor.tasks  # noqa: F401 - registers the tasks, as the worker's autodiscovery does
    from inngest_project.celery import app

    call = pending_call(enqueued_at=None, due_at=timezone.now() - timedelta(minutes=1))
    app.tasks["executor.sweep_due_calls"]()
    assert PendingCall.objects.get(id=call.id).enqueued_at is not None


# --- under a backlog: a message still waiting in the broker's queue is not lost ---------------

def broker_app(url: str) -> Celery:
    """The project's Celery configuration with this broker, as `start` runs it."""
    app = Celery("inngest_project", set_as_current=False)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    app.conf.broker_url = url
    app.conf.broker_transport = "inngest_project.broker:Transport"
    return app


@pytest.fixture
def use_broker() -> Iterator[Callable[[str], None]]:
    """Make a broker at this URL the current app's for the test: what the sweeper sends and reads."""
    previous = current_app._get_current_object()
    apps: list[Celery] = []

    def use(url: str) -> None:
        apps.append(broker_app(url))
        apps[-1].set_current()

    yield use
    previous.set_current()
    for app in apps:
        app.close()


@pytest.fixture
def redis_queue(use_broker: Callable[[str], None]) -> Iterator[redis.Redis]:
    url = stack_redis_url(8)
    client = redis.Redis.from_url(url)
    client.flushdb()
    use_broker(url)
    yield client
    client.flushdb()
    client.close()


def sent_call(sent_at: datetime, capture, due_at: datetime | None = None) -> PendingCall:
    """A call marked as sent at `sent_at`, with its message sent to the broker now."""
    call = pending_call(enqueued_at=sent_at, due_at=due_at or sent_at)
    with capture(execute=True):
        pending_calls.send_calls([call.id])
    return call


def test_calls_waiting_in_the_queue_behind_an_old_backlog_are_not_sent_again(redis_queue, django_capture_on_commit_callbacks) -> None:
    now = timezone.now()
    oldest = sent_call(now - timedelta(minutes=2), django_capture_on_commit_callbacks)
    behind = sent_call(now - timedelta(minutes=1), django_capture_on_commit_callbacks)
    assert redis_queue.llen("inngest") == 2
    assert resend_unsent_calls(now) == 0
    assert maintenance.find_stuck(now).lost_calls == []
    assert [call.enqueued_at for call in PendingCall.objects.filter(id__in=[oldest.id, behind.id])] == [
        now - timedelta(minutes=2), now - timedelta(minutes=1)]
    # Once the backlog has gone through the workers and they did not claim them, they are lost.
    redis_queue.delete("inngest")
    assert resend_unsent_calls(now) == 2


def test_call_sent_before_the_oldest_waiting_message_is_sent_again(redis_queue, django_capture_on_commit_callbacks) -> None:
    now = timezone.now()
    lost = pending_call(enqueued_at=now - timedelta(minutes=4), due_at=now - timedelta(minutes=4))  # its message is gone
    sent_call(now - timedelta(minutes=2), django_capture_on_commit_callbacks)
    assert maintenance.find_stuck(now).lost_calls == [lost.id]
    assert resend_unsent_calls(now) == 1
    assert PendingCall.objects.get(id=lost.id).enqueued_at == now


def test_the_oldest_messages_whose_calls_are_gone_are_passed_over(redis_queue, django_capture_on_commit_callbacks) -> None:
    now = timezone.now()
    gone = sent_call(now - timedelta(minutes=3), django_capture_on_commit_callbacks)
    PendingCall.objects.filter(id=gone.id).delete()  # its run ended; a duplicate message for it still waits
    sent_call(now - timedelta(minutes=2), django_capture_on_commit_callbacks)
    assert resend_unsent_calls(now) == 0


def test_countdown_call_is_judged_by_age_even_behind_a_backlog(redis_queue, django_capture_on_commit_callbacks) -> None:
    """A countdown's message is held by a worker (or, past MAX_COUNTDOWN_SECONDS, never sent):
    its place in the queue tells nothing."""
    now = timezone.now()
    sent_call(now - timedelta(minutes=5), django_capture_on_commit_callbacks)
    countdown = pending_call(enqueued_at=now - timedelta(minutes=2), due_at=now - timedelta(seconds=5))
    assert resend_unsent_calls(now) == 1
    assert PendingCall.objects.get(id=countdown.id).enqueued_at == now


def test_empty_queue_leaves_the_age_rule(redis_queue) -> None:
    now = timezone.now()
    call = pending_call(enqueued_at=now - lost_message_after() - timedelta(seconds=1), due_at=now - timedelta(minutes=1))
    assert redis_queue.llen("inngest") == 0
    assert resend_unsent_calls(now) == 1
    assert PendingCall.objects.get(id=call.id).enqueued_at == now


def test_memory_broker_leaves_the_age_rule(django_capture_on_commit_callbacks) -> None:
    """Dev mode's broker cannot be read: a message waiting there does not keep its call from the sweeper."""
    assert current_app.conf.broker_url.startswith("memory://")
    now = timezone.now()
    sent_call(now - timedelta(minutes=2), django_capture_on_commit_callbacks)
    assert resend_unsent_calls(now) == 1


def test_unreadable_broker_leaves_the_age_rule(use_broker, caplog: pytest.LogCaptureFixture) -> None:
    use_broker("redis://127.0.0.1:9/0")  # nothing listens there
    now = timezone.now()
    pending_call(enqueued_at=now - timedelta(minutes=2), due_at=now - timedelta(minutes=2))
    with caplog.at_level(logging.WARNING, logger="runs.call_queue"):
        assert resend_unsent_calls(now) == 1
    assert "cannot read the call queue" in caplog.text
