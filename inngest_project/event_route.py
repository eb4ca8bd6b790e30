"""`POST /e/{key}` served by the ASGI worker itself, without Django's request cycle.

Sending events is the one endpoint whose rate is the product: every app sends them, one request
per event unless it batches. Through Django (a2wsgi's thread hand-off, the middleware chain, DRF)
a request cost the HTTP worker about 2.3 ms of CPU; here about 1 ms (bench/http_servers.py), so two
processes on two cores answer half as many again. What the endpoint answers is still decided once,
in runs/api/intake.py. A small body (the usual request: one event, or a few) is parsed and validated
on the event loop itself, which then awaits the process's group commit (events/group_commit.py)
through a future: no thread of this route's pool is woken on the way from an event to its run.
A larger body, and a key that only the database can accept, go through the pool, where storing
blocks a thread (`answer_events`).

The requests this route does not take, it hands to Django unchanged, where the middleware answers
them as before: any other method, a key Django's URL would not match, a URL with a NUL character,
a Content-Length over the endpoint's cap, a Host that ALLOWED_HOSTS does not allow, plain
HTTP where Django redirects to HTTPS (INNGEST_HTTPS). Over HTTPS its answers carry Django's HSTS
header as well.
"""
from __future__ import annotations

import asyncio
import io
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from typing import Any, Awaitable, Callable

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.handlers.asgi import ASGIRequest
from django.db import close_old_connections

from core.db_health import close_old_connections_keeping_fresh, note_connections_used
from events.keys import is_accepted, is_accepted_as_configured
from inngest_project.middleware import body_limit, declared_length
from realtime.http import BodyTooLarge, Receive, Request, Send
from runs.api.intake import KEY_NOT_FOUND, answer_events, answer_events_awaiting

log = logging.getLogger("django.request")  # as Django logs its 4xx and 5xx answers (keys redacted by its filter)
PREFIX = "/e/"
# What Django's middleware adds to this endpoint's answers (security headers, the server kind, CORS).
_FIXED_HEADERS = (
    (b"content-type", b"application/json"), (b"allow", b"POST, OPTIONS"), (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"), (b"access-control-allow-origin", b"*"),
)
App = Callable[[dict, Receive, Send], Awaitable[None]]
# Validating on the event loop holds up this process's other HTTP traffic meanwhile. Its cost grows
# with the events in a body (10 to 20 us each on this project's VM), little with their size: up to
# these bounds it stays under a millisecond, well within the interpreter's 5 ms switch interval, for
# which a pool thread validating holds the loop off anyway (one GIL). A larger body goes to the pool,
# where the interpreter lets the loop in between. Every event is a JSON object, so the count of "{"
# (a scan in C) bounds the events from above before anything is parsed.
LOOP_BODY_BYTES = 64 * 1024
LOOP_MAX_OBJECTS = 64


def in_front_of(django_application: App, route: "EventRoute") -> App:
    """An ASGI application that serves `POST /e/{key}` with `route` and hands the rest to Django's."""

    async def application(scope: dict, receive: Receive, send: Send) -> None:
        request = route.claim(scope)
        if request is None:
            return await django_application(scope, receive, send)
        await route(request, receive, send)
    return application


class EventRoute:
    def __init__(self, threads: int) -> None:
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="event-route")

    @staticmethod
    def claim(scope: dict) -> ASGIRequest | None:
        """The request as Django sees it (its headers; the body is read apart), if this route takes it."""
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].startswith(PREFIX):
            return None
        key = scope["path"][len(PREFIX):]
        query = scope.get("query_string", b"")
        if not key or "/" in key or "\x00" in scope["path"] or b"%00" in query or b"\x00" in query:
            return None
        # Django's own checks of the Host header and of HTTPS (about 12 us to build the request).
        request = ASGIRequest(scope, io.BytesIO())
        if settings.SECURE_SSL_REDIRECT and not request.is_secure():
            return None
        try:
            request.get_host()
        except DisallowedHost:
            return None
        if declared_length(request) > body_limit(request.path):
            return None
        return request

    async def __call__(self, request: ASGIRequest, receive: Receive, send: Send) -> None:
        key = request.path[len(PREFIX):]
        if not is_accepted_as_configured(key) and not await self._in_thread(is_accepted, key):
            return await self._answer(request, send, 401, KEY_NOT_FOUND)
        limit = body_limit(request.path)
        try:
            # A client that disconnects mid-body leaves JSON cut short, which does not parse: nothing is stored.
            body = await Request(request.scope, receive).body(limit)
        except BodyTooLarge as exc:  # no Content-Length, and more than the cap sent
            return await self._answer(request, send, 413, {"ids": [], "status": 413, "error": str(exc)})
        seed_header = request.headers.get("x-inngest-event-id-seed")
        try:
            if is_small(body):
                status, payload = await answer_events_awaiting(body, seed_header)
            else:
                status, payload = await self._in_thread(answer_events, body, seed_header)
        except Exception:  # noqa: BLE001 - as Django would: logged, and a 500 for this request alone
            log.exception("Internal Server Error: %s", request.path)
            status, payload = 500, {"ids": [], "status": 500, "error": "internal server error"}
        await self._answer(request, send, status, payload)

    async def _in_thread(self, function: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.pool, _with_fresh_connection, function, *args)

    @staticmethod
    async def _answer(request: ASGIRequest, send: Send, status: int, payload: dict) -> None:
        if status >= 400:
            (log.error if status >= 500 else log.warning)("%s: %s", HTTPStatus(status).phrase, request.path)
        content = json.dumps(payload, separators=(",", ":")).encode()  # as DRF renders it
        headers = [*_FIXED_HEADERS, (b"x-inngest-server-kind", settings.INNGEST_SERVER_KIND.encode()),
                   (b"content-length", str(len(content)).encode())]
        if settings.SECURE_HSTS_SECONDS and request.is_secure():
            headers.append((b"strict-transport-security", _hsts().encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})


def is_small(body: bytes) -> bool:
    """Whether the event loop validates `body` itself (see LOOP_BODY_BYTES)."""
    return len(body) <= LOOP_BODY_BYTES and body.count(b"{") <= LOOP_MAX_OBJECTS


def _with_fresh_connection(function: Callable[..., Any], *args: Any) -> Any:
    # What Django does at a request's start and end: drop a connection past its age or broken
    # (and, as inngest_project/apps.py has it do, keep one used a moment ago without a SELECT 1).
    close_old_connections_keeping_fresh()
    try:
        return function(*args)
    finally:
        close_old_connections()
        note_connections_used()


def _hsts() -> str:
    """What django.middleware.security.SecurityMiddleware sends over HTTPS."""
    value = f"max-age={settings.SECURE_HSTS_SECONDS}"
    if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
        value += "; includeSubDomains"
    if settings.SECURE_HSTS_PRELOAD:
        value += "; preload"
    return value
