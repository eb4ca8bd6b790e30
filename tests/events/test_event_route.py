"""`POST /e/{key}` served by the ASGI worker itself (inngest_project/event_route.py) answers as
the Django view does: the same status, JSON and headers for every kind of request, and the events
it acknowledges are stored and start their runs."""
from __future__ import annotations

import asyncio
import json
import threading
from typing import Iterator

import httpx
import pytest
from a2wsgi import WSGIMiddleware
from django.core.wsgi import get_wsgi_application
from django.db import connection
from django.test import Client, override_settings

from events import group_commit
from events.keys import create_key
from events.models import Event
from inngest_project.event_route import EventRoute, in_front_of
from runs.models import Run
from tests.factories import make_function

pytestmark = pytest.mark.django_db(transaction=True)
IGNORED_HEADERS = {"content-length"}
THREADS = 2
# As inngest_project/asgi.py composes it, less the production checks that module runs on import.
route = EventRoute(threads=THREADS)
django_application = WSGIMiddleware(get_wsgi_application(), workers=THREADS)
application = in_front_of(django_application, route)


@pytest.fixture(autouse=True, scope="module")
def close_thread_connections() -> Iterator[None]:
    """Each thread of the two pools, and the group commit's, keeps a connection that would hold
    the test database open past the tests."""
    yield
    group_commit.shutdown()
    for pool in (route.pool, django_application.executor):
        everyone = threading.Barrier(THREADS)  # each task waits for the others: one per thread
        for done in [pool.submit(lambda: (everyone.wait(), connection.close())) for _ in range(THREADS)]:
            done.result(timeout=10)


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
