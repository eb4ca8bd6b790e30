"""What the routes the ASGI worker serves itself, in front of Django, have in common.

A few endpoints run so often that Django's request cycle around them (a2wsgi's thread hand-off,
the middleware chain, DRF) costs more than their work: `POST /e/{key}` (inngest_project/
event_route.py, every event sent) and `POST /v1/checkpoint/{runId}/async` (inngest_project/
checkpoint_route.py, every step a JS SDK v4 app runs). Each such route answers what the Django
view answers, decided by the same function, with the headers Django's middleware would add.

A route takes only the plain requests: anything else goes to Django unchanged, where the
middleware answers it as before. `plain_post` says what plain is: a POST without a NUL in its
URL, a Host that ALLOWED_HOSTS allows, not plain HTTP where Django redirects to HTTPS
(INNGEST_HTTPS), a Content-Length within the endpoint's cap. Over HTTPS the answers carry
Django's HSTS header as well.
"""
from __future__ import annotations

import asyncio
import io
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from typing import Any, Awaitable, Callable, Protocol

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.handlers.asgi import ASGIRequest
from django.db import close_old_connections

from inngest_project.middleware import body_limit, declared_length
from realtime.http import Receive, Send

log = logging.getLogger("django.request")  # as Django logs its 4xx and 5xx answers (keys redacted by its filter)
# What Django's middleware adds to these endpoints' answers (security headers, the server kind, CORS).
_FIXED_HEADERS = (
    (b"content-type", b"application/json"), (b"allow", b"POST, OPTIONS"), (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"), (b"access-control-allow-origin", b"*"),
)
App = Callable[[dict, Receive, Send], Awaitable[None]]


class NativeRoute(Protocol):
    def claim(self, scope: dict) -> ASGIRequest | None:
        """The request as Django sees it (its headers; the body is read apart), if this route takes it."""

    async def __call__(self, request: ASGIRequest, receive: Receive, send: Send) -> None: ...


def in_front_of(django_application: App, *routes: NativeRoute) -> App:
    """An ASGI application that serves what one of `routes` claims and hands the rest to Django's."""

    async def application(scope: dict, receive: Receive, send: Send) -> None:
        for route in routes:
            request = route.claim(scope)
            if request is not None:
                return await route(request, receive, send)
        await django_application(scope, receive, send)
    return application


def plain_post(scope: dict) -> ASGIRequest | None:
    """The request, if it is a plain POST (the module's docstring); None: Django answers it."""
    query = scope.get("query_string", b"")
    if scope["type"] != "http" or scope["method"] != "POST" or "\x00" in scope["path"] or b"%00" in query or b"\x00" in query:
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


async def in_thread(pool: ThreadPoolExecutor, function: Callable[..., Any], *args: Any) -> Any:
    """`function(*args)` in one of a route's threads (the ORM is synchronous), each of which keeps
    its database connection as Django's request cycle keeps a thread's."""
    return await asyncio.get_running_loop().run_in_executor(pool, _with_fresh_connection, function, *args)


def _with_fresh_connection(function: Callable[..., Any], *args: Any) -> Any:
    # What Django does at a request's start and end: drop a connection past its age or broken
    # (one used a moment ago goes without a SELECT 1 first: core/postgresql/base.py).
    close_old_connections()
    try:
        return function(*args)
    finally:
        close_old_connections()


async def answer(request: ASGIRequest, send: Send, status: int, payload: dict) -> None:
    """The JSON answer, with the headers Django's middleware would have added; logged as Django logs it."""
    if status >= 400:
        (log.error if status >= 500 else log.warning)("%s: %s", HTTPStatus(status).phrase, request.path)
    content = json.dumps(payload, separators=(",", ":")).encode()  # as DRF renders it
    headers = [*_FIXED_HEADERS, (b"x-inngest-server-kind", settings.INNGEST_SERVER_KIND.encode()),
               (b"content-length", str(len(content)).encode())]
    if settings.SECURE_HSTS_SECONDS and request.is_secure():
        headers.append((b"strict-transport-security", _hsts().encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})


def _hsts() -> str:
    """What django.middleware.security.SecurityMiddleware sends over HTTPS."""
    value = f"max-age={settings.SECURE_HSTS_SECONDS}"
    if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
        value += "; includeSubDomains"
    if settings.SECURE_HSTS_PRELOAD:
        value += "; preload"
    return value
