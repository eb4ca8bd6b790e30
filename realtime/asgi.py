"""The realtime endpoints as one ASGI application, mounted by the project's ASGI entry point in front
of Django (inngest_project/asgi.py), with this process's Fanout started and stopped by its lifespan.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Callable

import redis

from realtime import endpoints, subscriptions
from realtime.bus import current_bus
from realtime.fanout import Fanout
from realtime.http import Receive, Request, Send, respond, respond_error
from realtime.tokens import InvalidToken, verify_token

PREFIX = "/v1/realtime/"
# The bus (Redis) cannot be reached: the request is refused with a 503, not left to a bare 500.
BUS_ERRORS = (redis.RedisError, OSError, asyncio.TimeoutError)
log = logging.getLogger(__name__)


class RealtimeApp:
    def __init__(self, is_signing_key: Callable[[str], bool]) -> None:
        """`is_signing_key(authorization header)`: whether the header carries the server's signing
        key (always true when the server has none, as in dev mode)."""
        self.is_signing_key = is_signing_key
        self.fanout: Fanout | None = None
        self._starting = asyncio.Lock()

    async def startup(self) -> None:
        async with self._starting:
            if self.fanout is None:
                fanout = Fanout(current_bus())
                await fanout.bus.start(fanout)
                self.fanout = fanout

    async def shutdown(self) -> None:
        if self.fanout is not None:
            await self.fanout.bus.stop()
            self.fanout = None

    async def __call__(self, scope: dict, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        route = scope["path"].removeprefix(PREFIX)
        if self.fanout is None:
            await self.startup()  # a server that skipped the lifespan protocol
        if scope["type"] == "websocket":
            if route == "connect":
                return await subscriptions.serve_websocket(request, send, self.fanout)
            await receive()
            return await send({"type": "websocket.close", "code": 4404})
        if request.method == "OPTIONS":
            return await respond(send, 204, content_type="text/plain")
        handler = self.route(route, request.method)
        if handler is None:
            return await respond_error(send, 404, f"no realtime endpoint {request.method} {scope['path']}")
        has_started = False

        async def tracked_send(message: dict) -> None:
            nonlocal has_started
            has_started = has_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await handler(request, tracked_send)
        except BUS_ERRORS as exc:
            log.warning("realtime: %s %s failed, the bus cannot be reached: %r", request.method, scope["path"], exc)
            if not has_started:
                await respond_error(send, 503, "realtime is unavailable: its message bus (Redis) cannot be reached")

    def route(self, route: str, method: str) -> Callable | None:
        if method == "GET" and route == "sse":
            return lambda request, send: subscriptions.serve_sse(request, send, self.fanout)
        if method == "GET" and route == "connect":
            return lambda request, send: respond_error(send, 400, "/v1/realtime/connect is a WebSocket endpoint")
        if method != "POST":
            return None
        return {"publish": self.guard(endpoints.publish, publish_token_allowed=True),
                "publish/tee": self.guard(endpoints.publish_tee, publish_token_allowed=True),
                "token": self.guard(endpoints.create_token, publish_token_allowed=False)}.get(route)

    def guard(self, handler: Callable, publish_token_allowed: bool) -> Callable:
        """The signing key may do anything; a realtime token only publishes, and only if it says so."""
        async def guarded(request: Request, send: Send) -> None:
            if self.is_signing_key(request.header("authorization")) or (
                    publish_token_allowed and self.is_publish_token(request.bearer())):
                return await handler(request, send)
            await respond_error(send, 401, "Not authenticated")

        return guarded

    @staticmethod
    def is_publish_token(token: str) -> bool:
        try:
            return bool(token) and verify_token(token).may_publish
        except InvalidToken:
            return False
