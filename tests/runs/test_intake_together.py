"""Events whose runs need nothing but their rows are stored with those runs and their first calls
in one statement, after one read that answers both the trigger and the wait look-up; anything
else (a wait listening, flow control at creation) goes through the transaction as before."""
from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from events.ids import EventIdSeed, new_event_id
from events.models import Event
from events.triggers import forget_triggers, remembered_triggers
from functions.models import Function
from runs import intake
from runs.creation import create_runs, RunRequest
from runs.models import PendingCall, Run, RunIdempotencyKey, RunStatus, Step, Wait
from tests.factories import make_function

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="one statement on PostgreSQL; SQLite stores in a transaction"),
]
SEED = "1796645272026,AAECAwQFBgcICQ=="


@pytest.fixture(autouse=True)
def unknown_names() -> None:
    """Each test starts with names this process has not read (other tests' rows are gone)."""
    forget_triggers(["shop/order.paid", "nobody/listens"])


def event(name: str, data: dict | None = None, seed: str | None = None, index: int = 0) -> Event:
    parsed = EventIdSeed.parse(seed)
    stored = intake.validate_event({"name": name, "data": data or {}}, new_event_id(parsed, index), int(time.time() * 1000), False)
    stored.has_unique_id = parsed is None
    return stored


def test_an_event_that_starts_a_run_is_stored_with_the_run_and_its_first_call_in_two_statements(
        django_capture_on_commit_callbacks) -> None:
    function = make_function("shop/order.paid")
    incoming = event("shop/order.paid", {"order": 7})
    with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks() as sent:
        intake.store_events([incoming])
    assert len(queries) == 2  # the read of triggers and waits, then the statement that writes
    run = Run.objects.get()
    stored = Event.objects.get()
    assert run.function_id == function.id and run.event_id == stored.id and run.status == RunStatus.QUEUED
    assert run.events == [incoming.as_payload()] and stored.data == {"order": 7}
    assert (run.parallel_pending, run.run_slots, run.flow_action, run.singleton_key) == ([], [], "", "")
    call = PendingCall.objects.get(run=run)
    assert (call.step_target, call.attempt, call.lease_owner) == ("step", 0, "")
    assert call.due_at <= timezone.now() and call.enqueued_at == call.due_at
    assert len(sent) == 1  # the first call's message, once the statement has committed


def test_runs_written_together_are_the_rows_the_transaction_writes() -> None:
    function = make_function("shop/order.paid")
    intake.store_events([event("shop/order.paid", {"order": 7})])
    together = Run.objects.get()
    (in_transaction,) = create_runs([RunRequest(function, Event.objects.get(), together.events, "")])
    columns = [f.attname for f in Run._meta.concrete_fields if f.attname not in ("id", "created_at")]
    assert [getattr(together, c) for c in columns] == [getattr(Run.objects.get(id=in_transaction.id), c) for c in columns]


def test_a_group_of_events_starts_each_matching_function_once_per_event() -> None:
    first, second = make_function("shop/*"), make_function("shop/order.paid", expression="event.data.order > 5")
    with CaptureQueriesContext(connection) as queries:
        intake.store_events([event("shop/order.paid", {"order": 7}), event("shop/order.paid", {"order": 1}),
                             event("nobody/listens")])
    assert len(queries) == 2
    assert Event.objects.count() == 3
    assert sorted(str(run.function_id) for run in Run.objects.all()) == sorted([str(first.id)] * 2 + [str(second.id)])
    assert PendingCall.objects.count() == 3
    for run in Run.objects.select_related("event"):
        assert run.events == [run.event.as_payload()]


def test_an_event_id_starts_one_run_while_its_key_is_fresh() -> None:
    make_function("shop/order.paid")
    intake.store_events([event("shop/order.paid", seed=SEED)])
    intake.store_events([event("shop/order.paid", seed=SEED)])  # the SDK resending the request
    assert Event.objects.count() == 2 and Run.objects.count() == 1 and PendingCall.objects.count() == 1
    assert RunIdempotencyKey.objects.get().run_id == Run.objects.get().id


def test_the_same_event_id_twice_in_one_group_starts_one_run() -> None:
    make_function("shop/order.paid")
    intake.store_events([event("shop/order.paid", seed=SEED), event("shop/order.paid", seed=SEED)])
    assert Event.objects.count() == 2 and Run.objects.count() == 1


def test_an_expired_key_goes_to_the_next_event_with_that_id() -> None:
    function = make_function("shop/order.paid")
    incoming = event("shop/order.paid", seed=SEED)
    RunIdempotencyKey.objects.create(function=function, key=incoming.event_id, run_id="01OLDRUN000000000000000000",
                                     expires_at=timezone.now() - timedelta(seconds=1))
    intake.store_events([incoming])
    run = Run.objects.get()
    assert RunIdempotencyKey.objects.get().run_id == run.id and PendingCall.objects.filter(run=run).exists()


def test_a_wait_opened_after_the_triggers_were_remembered_is_resumed() -> None:
    """The statement writes nothing when a wait listens by the time it runs: the transaction then
    stores the event and resumes the wait."""
    function = make_function("shop/order.paid")
    intake.store_events([event("shop/order.paid", {"order": 1})])  # the process now knows the name
    waiter = Run.objects.create(id="01WAITER000000000000000000", function=function, status=RunStatus.RUNNING, events=[{}])
    Wait.objects.create(run=waiter, step_id="w1", step_name="paid", event_name="shop/order.paid",
                        expires_at=timezone.now() + timedelta(hours=1), created_at=timezone.now() - timedelta(seconds=1))
    assert remembered_triggers(["shop/order.paid"])
    with CaptureQueriesContext(connection) as queries:
        intake.store_events([event("shop/order.paid", {"order": 7})])
    assert len(queries) > 1  # the statement wrote nothing; the transaction did, with the same statement
    assert not any('INSERT INTO "events_event"' in query["sql"] for query in queries.captured_queries)
    assert Step.objects.get(run=waiter).output["data"] == {"order": 7}
    assert Event.objects.count() == 2 and Run.objects.exclude(id=waiter.id).count() == 2 and not Wait.objects.exists()


def test_a_second_event_of_a_known_name_is_one_statement() -> None:
    make_function("shop/order.paid")
    intake.store_events([event("shop/order.paid", {"order": 1})])
    with CaptureQueriesContext(connection) as queries:
        intake.store_events([event("shop/order.paid", {"order": 2})])
    assert len(queries) == 1 and Run.objects.count() == 2 and PendingCall.objects.count() == 2


def test_a_function_synced_after_an_event_starts_a_run_for_the_next_one() -> None:
    intake.store_events([event("shop/order.paid")])  # remembered: nothing listens to it
    function = make_function("shop/order.paid")
    intake.store_events([event("shop/order.paid")])
    assert list(Run.objects.values_list("function_id", flat=True)) == [function.id]


def test_a_change_to_a_remembered_function_is_seen_by_the_next_event() -> None:
    function = make_function("shop/order.paid")
    intake.store_events([event("shop/order.paid")])
    # Not how a sync changes it (it bumps the version and replaces the triggers): any column counts.
    Function.objects.filter(id=function.id).update(config={"cancel": [{"event": "shop/order.cancelled"}]})
    intake.store_events([event("shop/order.paid")])
    assert Wait.objects.filter(kind="cancel").count() == 1
    Function.objects.filter(id=function.id).update(is_archived=True)
    intake.store_events([event("shop/order.paid")])
    assert Run.objects.count() == 2 and Event.objects.count() == 3


def test_an_archived_function_starts_nothing() -> None:
    function = make_function("shop/order.paid")
    function.is_archived = True
    function.save()
    intake.store_events([event("shop/order.paid")])
    assert Event.objects.count() == 1 and not Run.objects.exists()


def test_a_run_with_cancel_events_and_a_start_timeout_gets_its_waits_in_the_same_statement() -> None:
    function = make_function("shop/order.paid")
    function.config = {"cancel": [{"event": "shop/order.cancelled", "if": "event.data.order == async.data.order"},
                                  {"event": "shop/cart.emptied", "timeout": "1h"}],
                       "timeouts": {"start": "10m"}}
    function.save()
    intake.store_events([event("shop/order.paid", {"order": 6})])
    with CaptureQueriesContext(connection) as queries:
        intake.store_events([event("shop/order.paid", {"order": 7})])
    assert len(queries) == 1
    run = Run.objects.get(events__contains='"order":7')
    waits = {wait.step_id: wait for wait in Wait.objects.filter(run=run)}
    assert sorted(waits) == ["cancel-0", "cancel-1", "timeout-start"]
    assert (waits["cancel-0"].match_path, waits["cancel-0"].match_value) == ("data.order", "7")
    assert waits["cancel-1"].expires_at - waits["cancel-1"].created_at == timedelta(hours=1)
    assert waits["timeout-start"].expires_at - run.created_at == timedelta(minutes=10)
    intake.store_events([event("shop/order.cancelled", {"order": 7})])  # the cancel wait works as any other
    assert Run.objects.get(id=run.id).status == RunStatus.CANCELLED


@pytest.mark.parametrize("config", [
    {"idempotency": "event.data.order"},
    {"rateLimit": {"limit": 1, "period": "1m"}},
], ids=["idempotency", "rate limit"])
def test_a_run_that_needs_more_than_its_rows_is_created_in_the_transaction(config: dict) -> None:
    function = make_function("shop/order.paid")
    function.config = config
    function.save()
    intake.store_events([event("shop/order.paid", {"order": 7})])
    intake.store_events([event("shop/order.paid", {"order": 7})])
    # The second run is skipped by the key or the limit.
    assert [run.status for run in Run.objects.order_by("id")] == [RunStatus.QUEUED, RunStatus.SKIPPED]


@pytest.mark.django_db(transaction=True)
def test_the_same_event_id_stored_at_once_by_two_connections_starts_one_run() -> None:
    """Two processes storing the SDK's resent request at the same moment: the key row decides."""
    make_function("shop/order.paid")
    barrier, errors = threading.Barrier(8), []

    def store() -> None:
        try:
            barrier.wait()
            intake.store_events([event("shop/order.paid", seed=SEED)])
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=store) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert Event.objects.count() == 8 and Run.objects.count() == 1 and PendingCall.objects.count() == 1


def in_another_connection(work) -> None:
    def run() -> None:
        try:
            work()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()


@pytest.mark.django_db(transaction=True)
def test_a_function_synced_and_a_wait_opened_by_another_process_are_seen_by_the_next_event() -> None:
    intake.store_events([event("shop/order.paid")])  # remembered by this process: nothing listens
    functions = []
    in_another_connection(lambda: functions.append(make_function("shop/order.paid")))
    intake.store_events([event("shop/order.paid", {"order": 1})])
    assert list(Run.objects.values_list("function_id", flat=True)) == [functions[0].id]

    def open_wait() -> None:
        waiter = Run.objects.create(id="01WAITER000000000000000000", function=functions[0], status=RunStatus.RUNNING, events=[{}])
        Wait.objects.create(run=waiter, step_id="w1", step_name="paid", event_name="shop/order.paid",
                            expires_at=timezone.now() + timedelta(hours=1), created_at=timezone.now() - timedelta(seconds=1))

    in_another_connection(open_wait)
    intake.store_events([event("shop/order.paid", {"order": 7})])
    assert Step.objects.get(run_id="01WAITER000000000000000000").output["data"] == {"order": 7}
