"""`POST /e/{key}` served by the ASGI worker itself (inngest_project/event_route.py) answers as
the Django view does: the same status, JSON and headers for every kind of request, and the events
it acknowledges are stored and start their runs."""
from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator

import httpx
import pytest
from a2wsgi import WSGIMiddleware
from django.core.wsgi import get_wsgi_application
from django.db import connection, transaction
from django.test import Client, override_settings

from core import metrics
from events import group_commit
from events.keys import create_key
from events.models import Event
from inngest_project.event_route import LOOP_BODY_BYTES, LOOP_MAX_OBJECTS, EventRoute
from inngest_project.native_route import in_front_of
from runs.models import Run
from tests.factories import make_function
from tests.route_pools import CountingPool, close_each_thread_connection

pytestmark = pytest.mark.django_db(transaction=True)
IGNORED_HEADERS = {"content-length"}
THREADS = 2
# As inngest_project/asgi.py composes it, less the production checks that module runs on import.
route = EventRoute(ThreadPoolExecutor(THREADS))
django_application = WSGIMiddleware(get_wsgi_application(), workers=THREADS)
application = in_front_of(django_application, route)


class PoolThatMustNotBeUsed(ThreadPoolExecutor):
    """A route's pool for requests the event loop answers itself: using it fails the request (500)."""

    def submit(self, *args, **kwargs):
        raise AssertionError("the route's thread pool was used")


loop_only_route, counted_route = EventRoute(PoolThatMustNotBeUsed(1)), EventRoute(CountingPool(THREADS, "counted-event-route"))
loop_only = in_front_of(django_application, loop_only_route)
counted = in_front_of(django_application, counted_route)


@pytest.fixture(autouse=True, scope="module")
def close_thread_connections() -> Iterator[None]:
    """Each thread of the pools, and the group commit's, keeps a connection that would hold
    the test database open past the tests."""
    yield
    group_commit.shutdown()
    for pool in (route.pool, django_application.executor, counted_route.pool):
        close_each_thread_connection(pool, THREADS)


def through_asgi(path: str, content: bytes | None = None, chunks: list[bytes] | None = None, app=None,
                 **headers: str) -> httpx.Response:
    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app or application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            if chunks is not None:
                async def stream():
                    for chunk in chunks:
                        yield chunk
                return await client.post(path, content=stream(), headers=headers)
            return await client.post(path, content=content, headers={"content-type": "application/json", **headers})
    return asyncio.run(send())


def through_django(path: str, content: bytes, **headers: str):
    return Client().post(path, data=content, content_type="application/json", headers=headers)


def answer_of(response) -> tuple[int, object, dict[str, str]]:
    headers = {key.lower(): value for key, value in response.headers.items() if key.lower() not in IGNORED_HEADERS}
    return response.status_code, json.loads(response.content), headers


def without_ids(answer: tuple[int, object, dict[str, str]]) -> tuple[int, object, dict[str, str]]:
    status, body, headers = answer
    return status, {**body, "ids": len(body.get("ids", []))}, headers


@pytest.mark.parametrize("content", [
    b'{"name": "app/user.created", "data": {"a": 1}}',
    b'[{"name": "a/one"}, {"name": "a/two", "id": "u-1"}]',
    b"{not json",
    b'{"name": ""}',
    b'[{"name": "a/ok"}, {"name": "inngest/function.failed"}]',
    b'{"name": "a/b", "data": {"s": "\\u0000"}}',
], ids=["one", "two", "malformed", "empty name", "one kept then refused", "NUL in data"])
def test_the_route_answers_as_the_django_view_does(content: bytes) -> None:
    native = answer_of(through_asgi("/e/some-key", content))
    django = answer_of(through_django("/e/some-key", content))
    assert without_ids(native) == without_ids(django)
    assert native[2]["x-inngest-server-kind"] == "dev" and native[2]["access-control-allow-origin"] == "*"


def test_events_it_acknowledges_are_stored_and_start_their_runs() -> None:
    make_function(event="app/user.created", slug="app-on-created")
    status, body, _ = answer_of(through_asgi("/e/some-key", b'{"name": "app/user.created", "data": {"a": 1}}',
                                             **{"x-inngest-event-id-seed": "1700000000000,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}))
    assert status == 200
    event = Event.objects.get(internal_id=body["ids"][0])
    assert event.data == {"a": 1}
    assert Run.objects.filter(event=event, function__slug="app-on-created").count() == 1


@override_settings(INNGEST_REQUIRE_EVENT_KEYS=True, INNGEST_EVENT_KEYS=["configured-key-0123456789"])
@pytest.mark.parametrize("key, status", [("configured-key-0123456789", 200), ("stored", 200), ("unknown-key-0123456789", 401)])
def test_production_takes_configured_and_stored_keys_only(key: str, status: int) -> None:
    if key == "stored":
        _, key = create_key("app")
    native = answer_of(through_asgi(f"/e/{key}", b'{"name": "a/b"}'))
    django = answer_of(through_django(f"/e/{key}", b'{"name": "a/b"}'))
    assert native[0] == status and without_ids(native) == without_ids(django)


@override_settings(INNGEST_MAX_REQUEST_BYTES=2048)
def test_a_body_over_the_cap_is_refused_with_413_with_or_without_a_content_length() -> None:
    big = json.dumps({"name": "a/b", "data": {"pad": "x" * 4096}}).encode()
    declared = answer_of(through_asgi("/e/some-key", big))  # Content-Length: Django's middleware answers
    streamed = answer_of(through_asgi("/e/some-key", chunks=[big[:1024], big[1024:]]))  # none: the route counts
    assert declared[0] == streamed[0] == 413
    assert declared[1] == streamed[1] == {"ids": [], "status": 413, "error": "Request body is larger than 2048 bytes"}
    assert not Event.objects.exists()


@override_settings(ALLOWED_HOSTS=["events.example"])
def test_a_host_that_allowed_hosts_refuses_is_refused_as_django_refuses_it() -> None:
    refused = through_asgi("/e/some-key", b'{"name": "a/b"}', host="evil.example")
    assert refused.status_code == through_django("/e/some-key", b'{"name": "a/b"}', host="evil.example").status_code == 400
    assert not Event.objects.exists()
    assert through_asgi("/e/some-key", b'{"name": "a/b"}', host="events.example").status_code == 200


HTTPS = {"SECURE_SSL_REDIRECT": True, "SECURE_PROXY_SSL_HEADER": ("HTTP_X_FORWARDED_PROTO", "https"),
         "SECURE_HSTS_SECONDS": 3600, "SECURE_HSTS_INCLUDE_SUBDOMAINS": True, "SECURE_HSTS_PRELOAD": False}


@override_settings(**HTTPS)
def test_behind_tls_plain_http_is_redirected_and_https_answers_carry_hsts_as_django_does() -> None:
    # Django's security middleware reads these settings when it is built: a handler built under them.
    behind_tls = in_front_of(WSGIMiddleware(get_wsgi_application(), workers=1), route)
    plain = through_asgi("/e/some-key", b'{"name": "a/b"}', app=behind_tls)
    assert plain.status_code == 301 and plain.headers["location"] == "https://testserver/e/some-key"
    assert not Event.objects.exists()
    secure = answer_of(through_asgi("/e/some-key", b'{"name": "a/b"}', app=behind_tls, **{"x-forwarded-proto": "https"}))
    django = answer_of(through_django("/e/some-key", b'{"name": "a/b"}', **{"x-forwarded-proto": "https"}))
    assert without_ids(secure) == without_ids(django)
    assert secure[0] == 200 and secure[2]["strict-transport-security"] == "max-age=3600; includeSubDomains"


def test_what_the_route_does_not_take_django_answers() -> None:
    nul = through_asgi("/e/some-key?x=%00", b'{"name": "a/b"}')
    assert nul.status_code == 400 and nul.json()["error"] == "the URL contains a NUL character"
    assert through_asgi("/e/some/key", b'{"name": "a/b"}').status_code == 404
    assert not Event.objects.exists()


def events_received() -> float:
    metrics.flush()
    return metrics.read_all().get("inngest_events_received", {}).get((), 0.0)


def test_a_small_request_is_stored_and_starts_its_run_without_the_routes_thread_pool() -> None:
    make_function(event="app/user.created", slug="app-on-created")
    before = events_received()
    status, body, _ = answer_of(through_asgi("/e/some-key", b'[{"name": "app/user.created", "data": {"a": 1}}, {"name": "a/b"}]',
                                             app=loop_only))
    assert status == 200 and len(body["ids"]) == 2
    event = Event.objects.get(internal_id=body["ids"][0])
    assert event.data == {"a": 1} and Event.objects.filter(internal_id=body["ids"][1], name="a/b").exists()
    assert Run.objects.filter(event=event, function__slug="app-on-created").count() == 1
    assert events_received() - before == 2  # counted once per stored event


@pytest.mark.parametrize("events", [
    [{"name": "app/big", "data": {"pad": "x" * LOOP_BODY_BYTES}}],
    [{"name": "app/big", "data": {"i": i}} for i in range(LOOP_MAX_OBJECTS + 1)],
], ids=["over the size", "over the events"])
def test_a_larger_body_goes_through_the_routes_thread_pool_and_is_stored(events: list[dict]) -> None:
    make_function(event="app/big", slug="app-on-big")
    used, before = counted_route.pool.used, events_received()
    status, body, _ = answer_of(through_asgi("/e/some-key", json.dumps(events).encode(), app=counted))
    assert status == 200 and len(body["ids"]) == len(events)
    assert counted_route.pool.used == used + 1
    assert Event.objects.filter(internal_id__in=body["ids"]).count() == len(events)
    assert Run.objects.filter(function__slug="app-on-big").count() == len(events)
    assert events_received() - before == len(events)


@pytest.mark.parametrize("content, error, kept", [
    (b'{"name": ""}', "Event name is empty", 0),
    (b"{not json", "Unable to parse event body as JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)", 0),
    (b'[{"name": "a/ok"}, {"name": "inngest/function.failed"}]', "Event name is reserved for internal use: inngest/function.failed", 1),
], ids=["empty name", "malformed", "one kept then refused"])
def test_an_invalid_event_answers_400_from_the_event_loop_as_before(content: bytes, error: str, kept: int) -> None:
    native = answer_of(through_asgi("/e/some-key", content, app=loop_only))
    assert without_ids(native)[:2] == (400, {"ids": kept, "status": 400, "error": error})
    assert without_ids(native) == without_ids(answer_of(through_django("/e/some-key", content)))
    assert Event.objects.filter(internal_id__in=native[1]["ids"], name="a/ok").count() == kept  # the one kept is stored


@pytest.fixture
def refused_by_the_database() -> Iterator[str]:
    """A name whose events PostgreSQL refuses to store (a trigger raising): a commit that fails."""
    table = Event._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute("CREATE FUNCTION refuse_event() RETURNS trigger LANGUAGE plpgsql AS "
                       "$$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$")
        cursor.execute(f"CREATE TRIGGER refuse_event BEFORE INSERT ON {table} FOR EACH ROW "
                       "WHEN (NEW.name = 'app/refused') EXECUTE FUNCTION refuse_event()")
    try:
        yield "app/refused"
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TRIGGER refuse_event ON {table}")
            cursor.execute("DROP FUNCTION refuse_event()")


def test_a_commit_that_fails_on_the_event_loop_answers_503_as_the_view_does(refused_by_the_database: str) -> None:
    content = json.dumps({"name": refused_by_the_database}).encode()
    native = answer_of(through_asgi("/e/some-key", content, app=loop_only))
    django = answer_of(through_django("/e/some-key", content))
    assert native == django
    assert native[:2] == (503, {"ids": [], "status": 503, "error": "events could not be stored: InternalError"})
    assert not Event.objects.exists()
    assert through_asgi("/e/some-key", b'{"name": "a/b"}', app=loop_only).status_code == 200  # the committer goes on


# The committer thread resolves the future the timed-out request gave up on: an exception there
# would end the thread.
@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_commit_that_takes_too_long_answers_503_and_the_committer_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(group_commit, "WAIT_SECONDS", 0.5)
    with transaction.atomic():  # holds the events table: the committer's insert waits for it
        connection.cursor().execute(f"LOCK TABLE {Event._meta.db_table} IN ACCESS EXCLUSIVE MODE")
        late = answer_of(through_asgi("/e/some-key", b'{"name": "app/late"}', app=loop_only))
    assert late[:2] == (503, {"ids": [], "status": 503, "error": "events could not be stored: CommitTimeout"})
    status, body, _ = answer_of(through_asgi("/e/some-key", b'{"name": "app/next"}', app=loop_only))
    assert status == 200 and Event.objects.filter(internal_id=body["ids"][0]).exists()
    # Committed after all, once the table was free (a retry with the same seed would start no second run).
    assert Event.objects.filter(name="app/late").exists()
