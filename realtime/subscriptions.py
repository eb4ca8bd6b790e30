"""Serving subscribers: `GET /v1/realtime/sse?token=` (server-sent events) and the WebSocket
`/v1/realtime/connect?token=` the JS SDK's `subscribe()` opens.

Each connection is one task writing its subscriber's frames, raced against the client going away
and against the subscriber overflowing (a client too slow to read what it is sent, closed rather
than buffered without end). Limits: subscribers per token (INNGEST_REALTIME_MAX_SUBSCRIBERS_PER_TOKEN,
counted across processes), and a connection that has delivered nothing for
INNGEST_REALTIME_IDLE_SECONDS is closed; keepalives go every INNGEST_REALTIME_KEEPALIVE_SECONDS.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

from django.conf import settings

from realtime.fanout import Fanout, Subscriber
from realtime.http import Request, Send, common_headers, respond_error, wait_for_disconnect
from realtime.messages import MESSAGE_FRAME, name_problem
from realtime.tokens import Grant, InvalidToken, verify_token

log = logging.getLogger(__name__)
# WebSocket close codes (4000-4999 are the application's).
CLOSE_NORMAL, CLOSE_SLOW, CLOSE_IDLE = 1000, 4008, 4000


def grant_of(request: Request) -> tuple[Grant | None, str]:
    token = request.query("token") or request.bearer()
    if not token:
        return None, "Not authenticated: a realtime token is required (?token= or a bearer token)"
    try:
        grant = verify_token(token)
    except InvalidToken as exc:
        return None, f"Not authenticated: {exc}"
    if not grant.topics or any(name_problem("topic", t.name) or name_problem("channel", t.channel) for t in grant.topics):
        return None, "Not authenticated: the token names no usable topic"
    return grant, ""


async def serve_sse(request: Request, send: Send, fanout: Fanout) -> None:
    grant, problem = grant_of(request)
    if grant is None:
        return await respond_error(send, 401, problem)

    async def start() -> None:
        await send({"type": "http.response.start", "status": 200, "headers": common_headers("text/event-stream")})
        await send({"type": "http.response.body", "body": b":\n\n", "more_body": True})

    async def write(frame: bytes) -> None:
        await send({"type": "http.response.body", "body": sse_bytes(frame), "more_body": True})

    async def keepalive() -> None:
        await send({"type": "http.response.body", "body": b":\n\n", "more_body": True})

    async def refuse(status: int, message: str) -> None:
        await respond_error(send, status, message)

    reason = await serve(grant, fanout, request.receive, start, write, keepalive, refuse)
    if reason == "idle":
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    # A slow client's connection is dropped, not finished: finishing it would wait on the
    # same full socket.


async def serve_websocket(request: Request, send: Send, fanout: Fanout) -> None:
    if (await request.receive())["type"] != "websocket.connect":
        return
    grant, problem = grant_of(request)
    if grant is None:
        log.info("realtime: websocket refused: %s", problem)
        return await send({"type": "websocket.close", "code": 4401, "reason": "Not authenticated"})

    async def start() -> None:
        await send({"type": "websocket.accept"})

    async def write(frame: bytes) -> None:
        await send({"type": "websocket.send", "text": frame[1:].decode("utf-8", "replace")})

    async def keepalive() -> None:
        pass  # the server pings WebSocket clients itself (uvicorn's ws_ping_interval)

    async def refuse(status: int, message: str) -> None:
        await send({"type": "websocket.close", "code": 4429, "reason": message[:120]})

    reason = await serve(grant, fanout, request.receive, start, write, keepalive, refuse)
    if reason != "gone":
        code = {"slow": CLOSE_SLOW, "idle": CLOSE_IDLE}.get(reason, CLOSE_NORMAL)
        await send({"type": "websocket.close", "code": code, "reason": reason})


def sse_bytes(frame: bytes) -> bytes:
    if frame[:1] == MESSAGE_FRAME:
        return b"data: " + frame[1:] + b"\n\n"
    return frame[1:]  # a Durable Endpoint's stream is server-sent events already


Write = Callable[[bytes], Awaitable[None]]
Step = Callable[[], Awaitable[None]]


async def serve(grant: Grant, fanout: Fanout, receive, start: Step, write: Write, keepalive: Step,
                refuse: Callable[[int, str], Awaitable[None]]) -> str:
    """Why the subscription ended: `gone` (the client left), `slow`, `idle` or `refused`."""
    limit, bus = settings.INNGEST_REALTIME_MAX_SUBSCRIBERS_PER_TOKEN, fanout.bus
    slot_ttl = int(settings.INNGEST_REALTIME_IDLE_SECONDS + 4 * settings.INNGEST_REALTIME_KEEPALIVE_SECONDS)
    if not await bus.take_slot(grant.token_id, limit, slot_ttl):
        await refuse(429, f"this token already has {limit} subscribers (INNGEST_REALTIME_MAX_SUBSCRIBERS_PER_TOKEN)")
        return "refused"
    subscriber = Subscriber({topic.key for topic in grant.topics}, settings.INNGEST_REALTIME_SUBSCRIBER_BUFFER)
    try:
        await fanout.add(subscriber)
        await start()
        return await race(deliver(subscriber, write, keepalive, lambda: bus.keep_slot(grant.token_id, slot_ttl)),
                          receive, subscriber)
    finally:
        await fanout.remove(subscriber)
        await bus.give_slot(grant.token_id)


async def race(delivering: Awaitable[str], receive, subscriber: Subscriber) -> str:
    tasks = {
        asyncio.ensure_future(delivering): None,
        asyncio.ensure_future(wait_for_disconnect(receive)): "gone",
        asyncio.ensure_future(subscriber.overflowed.wait()): "slow",
    }
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
    first = done.pop()
    return tasks[first] or first.result()


async def deliver(subscriber: Subscriber, write: Write, keepalive: Step, keep_slot: Step) -> str:
    loop = asyncio.get_running_loop()
    idle_since = loop.time()
    while True:
        frame = await subscriber.next_frame(settings.INNGEST_REALTIME_KEEPALIVE_SECONDS)
        if frame is not None:
            idle_since = loop.time()
            await write(frame)
            continue
        if loop.time() - idle_since >= settings.INNGEST_REALTIME_IDLE_SECONDS:
            return "idle"
        await keepalive()
        await keep_slot()
