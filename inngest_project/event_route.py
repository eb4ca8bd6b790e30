"""`POST /e/{key}` served by the ASGI worker itself, without Django's request cycle.

Sending events is the one endpoint whose rate is the product: every app sends them, one request
per event unless it batches. Through Django (a2wsgi's thread hand-off, the middleware chain, DRF)
a request cost the HTTP worker about 2.3 ms of CPU; here about 1 ms (bench/http_servers.py), so two
processes on two cores answer half as many again. What the endpoint answers is still decided once,
in runs/api/intake.py (`answer_events`), run in this route's thread pool: storing waits for the
process's group commit (events/group_commit.py), which blocks.

The requests this route does not take, it hands to Django unchanged, where the middleware answers
them as before: any other method, a key Django's URL would not match, a URL with a NUL character,
a Content-Length over the endpoint's cap, a Host that ALLOWED_HOSTS does not allow (or none), plain
HTTP where Django redirects to HTTPS (INNGEST_HTTPS). Over HTTPS its answers carry Django's HSTS
header as well.
"""
from __future__ import annotations

import asyncio
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from typing import Any, Awaitable, Callable

from django.conf import settings
from django.db import close_old_connections
from django.http.request import split_domain_port, validate_host

from events.keys import is_accepted, is_accepted_as_configured
from inngest_project.middleware import body_limit
from runs.api.intake import KEY_NOT_FOUND, answer_events

log = logging.getLogger("django.request")  # as Django logs its 4xx and 5xx answers (keys redacted by its filter)
PREFIX = "/e/"
# What Django's middleware adds to this endpoint's answers (security headers, the server kind, CORS).
_FIXED_HEADERS = (
    (b"content-type", b"application/json"), (b"allow", b"POST, OPTIONS"), (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"), (b"access-control-allow-origin", b"*"),
)

Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


App = Callable[[dict, Receive, Send], Awaitable[None]]


def in_front_of(django_application: App, route: "EventRoute") -> App:
    """An ASGI application that serves `POST /e/{key}` with `route` and hands the rest to Django's."""

    async def application(scope: dict, receive: Receive, send: Send) -> None:
        if route.takes(scope):
            return await route(scope, receive, send)
        await django_application(scope, receive, send)
    return application


class EventRoute:
    def __init__(self, threads: int) -> None:
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="event-route")

    @staticmethod
    def takes(scope: dict) -> bool:
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].startswith(PREFIX):
            return False
        key = scope["path"][len(PREFIX):]
        query = scope.get("query_string", b"")
        if not key or "/" in key or "\x00" in scope["path"] or b"%00" in query or b"\x00" in query:
            return False
        if settings.SECURE_SSL_REDIRECT and not _is_secure(scope):
            return False
        return _content_length(scope) <= body_limit(scope["path"]) and _is_allowed_host(scope)

    async def __call__(self, scope: dict, receive: Receive, send: Send) -> None:
        key = scope["path"][len(PREFIX):]
        if not is_accepted_as_configured(key) and not await self._in_thread(is_accepted, key):
            return await self._answer(scope, send, 401, KEY_NOT_FOUND)
        limit = body_limit(scope["path"])
        body = await _read_body(receive, limit)
        if body is _GONE:
            return  # the client went away before sending its body: nothing stored, nobody to answer
        if body is None:  # no Content-Length, and more than the cap sent
            return await self._answer(scope, send, 413, {"ids": [], "status": 413, "error": f"Request body is larger than {limit} bytes"})
        seed = _header(scope, b"x-inngest-event-id-seed")
        try:
            status, payload = await self._in_thread(answer_events, body, seed)
        except Exception:  # noqa: BLE001 - as Django would: logged, and a 500 for this request alone
            log.exception("Internal Server Error: %s", scope["path"])
            status, payload = 500, {"ids": [], "status": 500, "error": "internal server error"}
        await self._answer(scope, send, status, payload)

    async def _in_thread(self, function: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.pool, _with_fresh_connection, function, *args)

    @staticmethod
    async def _answer(scope: dict, send: Send, status: int, payload: dict) -> None:
        if status >= 400:
            (log.error if status >= 500 else log.warning)("%s: %s", HTTPStatus(status).phrase, scope["path"])
        content = json.dumps(payload, separators=(",", ":")).encode()  # as DRF renders it
        headers = [*_FIXED_HEADERS, (b"x-inngest-server-kind", settings.INNGEST_SERVER_KIND.encode()),
                   (b"content-length", str(len(content)).encode())]
        if settings.SECURE_HSTS_SECONDS and _is_secure(scope):
            headers.append((b"strict-transport-security", _hsts().encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})


def _with_fresh_connection(function: Callable[..., Any], *args: Any) -> Any:
    # What Django does at a request's start and end: drop a connection past its age or broken.
    close_old_connections()
    try:
        return function(*args)
    finally:
        close_old_connections()


_GONE = b"<disconnected>"


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, None past `limit`, or _GONE (the same object) if the client disconnected."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return _GONE
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _header(scope: dict, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _is_secure(scope: dict) -> bool:
    """As Django's HttpRequest.is_secure: the proxy's header when configured and present, else the scheme."""
    if settings.SECURE_PROXY_SSL_HEADER:
        meta_name, secure_value = settings.SECURE_PROXY_SSL_HEADER
        value = _header(scope, meta_name.removeprefix("HTTP_").replace("_", "-").lower().encode())
        if value is not None:
            return value.split(",", 1)[0].strip() == secure_value
    return scope.get("scheme") == "https"


def _hsts() -> str:
    """What django.middleware.security.SecurityMiddleware sends over HTTPS."""
    value = f"max-age={settings.SECURE_HSTS_SECONDS}"
    if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
        value += "; includeSubDomains"
    if settings.SECURE_HSTS_PRELOAD:
        value += "; preload"
    return value


def _is_allowed_host(scope: dict) -> bool:
    """Whether Django would take the request's Host (HttpRequest.get_host); no Host header at all
    is left to Django, which reconstructs one from the server's name."""
    forwarded = _header(scope, b"x-forwarded-host") if settings.USE_X_FORWARDED_HOST else None
    host = forwarded or _header(scope, b"host")
    if not host:
        return False
    allowed = settings.ALLOWED_HOSTS or ([".localhost", "127.0.0.1", "[::1]"] if settings.DEBUG else [])
    domain, _ = split_domain_port(host)
    return bool(domain) and validate_host(domain, allowed)


def _content_length(scope: dict) -> int:
    try:
        return int(_header(scope, b"content-length") or 0)
    except ValueError:
        return 0
