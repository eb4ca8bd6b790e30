"""The sweeper: due calls with no message in flight are sent again, others are left alone."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from runs import creation, pending_calls
from runs.models import PendingCall
from runs.pending_calls import lost_message_after, resend_unsent_calls
from tests.factories import make_function

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
