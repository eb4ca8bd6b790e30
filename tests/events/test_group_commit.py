"""Group commit of /e/ requests: shared transactions, every acknowledged event stored, a failed
group stores nothing and the committer goes on; a request retried on its own spends no second
rate-limit token."""
from __future__ import annotations

import json
import threading
import time
from typing import Iterator

import pytest
import redis
from django.db import DataError, OperationalError, connection, transaction
from django.db.backends.signals import connection_created
from django.test import override_settings

from core.postgresql import base as postgresql_backend
from events import group_commit
from events.group_commit import GroupCommitter
from events.models import Event
from runs.flow_control import counters as counters_module
from runs.intake import ingest, store_events, validate_event
from runs.models import Run, RunStatus
from tests.factories import make_function
from tests.db_wire import Wire
from tests.stacks import stack_redis_url, wait_for

pytestmark = pytest.mark.django_db(transaction=True)
COMMITTER = "event-group-commit"  # the committer thread's name


@pytest.fixture(autouse=True)
def stop_committer():
    yield
    group_commit.shutdown()  # its thread's connection would keep the test database open


def event(name: str, index: int) -> Event:
    return validate_event({"name": name, "data": {"i": index}}, f"01KGROUPCOMMIT{index:012d}", 1_700_000_000_000, False)


def test_concurrent_requests_are_all_stored_and_start_their_runs() -> None:
    function = make_function("app/grouped")
    acknowledged: list[str] = []
    lock = threading.Lock()

    def send(index: int) -> None:
        result = ingest(json.dumps({"name": "app/grouped", "data": {"i": index}}).encode())
        with lock:
            acknowledged.extend(result.ids)
        connection.close()  # this thread's own connection

    threads = [threading.Thread(target=send, args=(i,)) for i in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(acknowledged) == 24
    assert set(Event.objects.filter(internal_id__in=acknowledged).values_list("internal_id", flat=True)) == set(acknowledged)
    assert Run.objects.filter(function=function).count() == 24


def test_a_failed_group_stores_none_of_its_events_and_the_committer_goes_on() -> None:
    committer = GroupCommitter(store_events)
    too_long = event("app/ok", 2)
    too_long.v = "x" * 300  # longer than the column: PostgreSQL refuses the insert
    with pytest.raises(DataError):
        committer.submit([event("app/ok", 1), too_long])
    assert not Event.objects.filter(internal_id__startswith="01KGROUPCOMMIT").exists()

    committer.submit([event("app/ok", 3)])  # the same committer thread, a fresh transaction
    committer.stop()
    assert list(Event.objects.filter(internal_id__startswith="01KGROUPCOMMIT").values_list("data", flat=True)) == [{"i": 3}]


def test_a_request_whose_events_the_database_refuses_fails_alone_in_its_group() -> None:
    first_commit_started, release_first_commit = threading.Event(), threading.Event()

    def store_holding_the_first_commit(events: list[Event]) -> None:
        if not first_commit_started.is_set():
            first_commit_started.set()
            release_first_commit.wait(10)
        store_events(events)

    committer = GroupCommitter(store_holding_the_first_commit)
    answers: dict[str, str] = {}

    def send(name: str, events: list[Event]) -> None:
        try:
            committer.submit(events)
            answers[name] = "stored"
        except DataError:
            answers[name] = "refused"
        finally:
            connection.close()

    too_long = event("app/ok", 12)
    too_long.v = "x" * 300
    first = threading.Thread(target=send, args=("first", [event("app/ok", 10)]))
    first.start()
    assert first_commit_started.wait(10)
    # While the first commit runs, these two queue up and go together in the next group.
    queued = [threading.Thread(target=send, args=args) for args in (("good", [event("app/ok", 11)]), ("bad", [too_long]))]
    for thread in queued:
        thread.start()
    wait_for(lambda: len(committer._queue) == 2, timeout=10, what="two requests queued")
    release_first_commit.set()
    for thread in [first, *queued]:
        thread.join(10)
    committer.stop()
    assert answers == {"first": "stored", "good": "stored", "bad": "refused"}
    stored = Event.objects.filter(internal_id__startswith="01KGROUPCOMMIT").values_list("data", flat=True)
    assert sorted(data["i"] for data in stored) == [10, 11]


def test_a_caller_inside_a_transaction_stores_in_it() -> None:
    from django.db import transaction

    with pytest.raises(RuntimeError), transaction.atomic():
        ingest(json.dumps({"name": "app/inside"}).encode())
        assert Event.objects.filter(name="app/inside").count() == 1  # visible here: same transaction
        raise RuntimeError("roll back")
    assert not Event.objects.filter(name="app/inside").exists()


@pytest.fixture(params=["fakeredis", "redis"])
def flow_counters(request: pytest.FixtureRequest) -> Iterator[None]:
    """Flow control's counters as in dev mode (in-process fakeredis) or in production (Redis)."""
    url = stack_redis_url(13) if request.param == "redis" else ""
    if url:
        redis.Redis.from_url(url).flushdb()
    with override_settings(REDIS_URL=url, INNGEST_UNCONFIRMED_TOKEN_SECONDS=4):
        counters_module._counters = None  # the process's client is made from REDIS_URL on first use
        yield
    counters_module._counters = None


def store_failing_after_admission(events: list[Event]) -> None:
    """store_events, then a failure before commit for a request marked bad: its runs were admitted."""
    with transaction.atomic():
        store_events(events)
        if any(event.data.get("bad") for event in events):
            raise DataError("refused after its runs were admitted")


def test_a_group_retried_request_by_request_spends_one_token_per_admitted_run(flow_counters: None) -> None:
    function = make_function("app/limited")
    function.config = {"rateLimit": {"limit": 30, "period": "1h"}}  # 4 at once (a burst of 3), then one per 2 min
    function.save()
    first_commit_started, release_first_commit = threading.Event(), threading.Event()

    def store_holding_the_first_commit(events: list[Event]) -> None:
        if not first_commit_started.is_set():
            first_commit_started.set()
            release_first_commit.wait(10)
        store_failing_after_admission(events)

    committer = GroupCommitter(store_holding_the_first_commit)
    answers: dict[str, str] = {}

    def send(name: str, events: list[Event]) -> None:
        try:
            committer.submit(events)
            answers[name] = "stored"
        except DataError:
            answers[name] = "refused"
        finally:
            connection.close()

    def limited(index: int, **data: object) -> Event:
        return validate_event({"name": "app/limited", "data": {"i": index, **data}}, f"01KGROUPTOKENS{index:012d}",
                              1_700_000_000_000, False)

    holding = threading.Thread(target=send, args=("holding", [event("app/other", 1)]))
    holding.start()
    assert first_commit_started.wait(10)
    # While the first commit runs, these two queue up and go together in the next group.
    queued = [threading.Thread(target=send, args=args) for args in (("good", [limited(1)]), ("bad", [limited(2, bad=True)]))]
    for thread in queued:
        thread.start()
    wait_for(lambda: len(committer._queue) == 2, timeout=10, what="two requests queued")
    release_first_commit.set()
    for thread in [holding, *queued]:
        thread.join(10)
    assert answers == {"holding": "stored", "good": "stored", "bad": "refused"}

    def admitted() -> int:
        return Run.objects.filter(function=function).exclude(status=RunStatus.SKIPPED).count()

    # The group's transaction took two tokens, and the retries took none: two of four are left
    # (the bad request's token is still unconfirmed).
    assert admitted() == 1
    for index in range(10, 14):
        committer.submit([limited(index)])
    assert admitted() == 3
    # The bad request never committed: its token comes back once the window has passed.
    time.sleep(4.5)
    for index in range(20, 22):
        committer.submit([limited(index)])
    committer.stop()
    assert admitted() == 4  # the four tokens went to four admitted runs
    assert Run.objects.filter(function=function, status=RunStatus.SKIPPED).count() == 3


def test_a_connection_that_just_committed_skips_its_health_check_an_idle_or_broken_one_does_not(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Django's health check (a SELECT 1 before the first statement) runs when the committer's
    connection has been idle (core/postgresql/base.py), not between groups in quick succession;
    a connection the server dropped fails its group, and the next group connects again."""
    wire = Wire()
    connection_created.connect(wire.on_connection_created)
    try:
        committer = GroupCommitter(store_events)
        checks: list[int] = []  # health checks the committer had sent after each group

        def submit(index: int, v: str | None = None) -> None:
            grouped = event("app/ok", index)
            grouped.v = v or grouped.v
            try:
                committer.submit([grouped])
            finally:
                checks.append(wire.health_checks(COMMITTER))

        submit(30)  # a new connection: healthy by definition
        submit(31)  # just committed: no check
        monkeypatch.setattr(postgresql_backend, "FRESH_SECONDS", 0.05)
        submit(32)
        time.sleep(0.1)
        submit(33)  # idle longer than FRESH_SECONDS: checked
        monkeypatch.setattr(postgresql_backend, "FRESH_SECONDS", 60)
        with pytest.raises(DataError):  # the data's fault: the connection is fine, and not checked after
            submit(34, "x" * 300)
        submit(35)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        with pytest.raises(OperationalError):  # used a moment ago: not checked, and found gone
            submit(36)
        submit(37)  # Django found the error and dropped the connection: a new one
        committer.stop()
    finally:
        connection_created.disconnect(wire.on_connection_created)
    assert checks == [0, 0, 0, 1, 1, 1, 1, 1]
    stored = Event.objects.filter(internal_id__startswith="01KGROUPCOMMIT").values_list("data", flat=True)
    assert sorted(data["i"] for data in stored) == [30, 31, 32, 33, 35, 37]
