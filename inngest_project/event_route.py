"""`POST /e/{key}` served by the ASGI worker itself, without Django's request cycle
(inngest_project/native_route.py).

Sending events is the one endpoint whose rate is the product: every app sends them, one request
per event unless it batches. Through Django (a2wsgi's thread hand-off, the middleware chain, DRF)
a request cost the HTTP worker about 2.3 ms of CPU; here about 1 ms (bench/http_servers.py), so two
processes on two cores answer half as many again. What the endpoint answers is still decided once,
in runs/api/intake.py. A small body (the usual request: one event, or a few) is parsed and validated
on the event loop itself, which then awaits the process's group commit (events/group_commit.py)
through a future: no thread of this route's pool is woken on the way from an event to its run.
A larger body, and a key that only the database can accept, go through the pool, where storing
blocks a thread (`answer_events`). Besides the requests native_route.py leaves to Django, this
route leaves it a key Django's URL would not match.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from django.core.handlers.asgi import ASGIRequest

from events.keys import is_accepted, is_accepted_as_configured
from inngest_project.middleware import body_limit
from inngest_project.native_route import answer, in_thread, log, plain_post
from realtime.http import BodyTooLarge, Receive, Request, Send
from runs.api.intake import KEY_NOT_FOUND, answer_events, answer_events_awaiting

PREFIX = "/e/"
# Validating on the event loop holds up this process's other HTTP traffic meanwhile. Its cost grows
# with the events in a body (10 to 20 us each on this project's VM), little with their size: up to
# these bounds it stays under a millisecond, well within the interpreter's 5 ms switch interval, for
# which a pool thread validating holds the loop off anyway (one GIL). A larger body goes to the pool,
# where the interpreter lets the loop in between. Every event is a JSON object, so the count of "{"
# (a scan in C) bounds the events from above before anything is parsed.
LOOP_BODY_BYTES = 64 * 1024
LOOP_MAX_OBJECTS = 64


class EventRoute:
    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self.pool = pool  # for a large body and a key only the database can accept

    @staticmethod
    def claim(scope: dict) -> ASGIRequest | None:
        if not scope["path"].startswith(PREFIX):
            return None
        key = scope["path"][len(PREFIX):]
        if not key or "/" in key:
            return None
        return plain_post(scope)

    async def __call__(self, request: ASGIRequest, receive: Receive, send: Send) -> None:
        key = request.path[len(PREFIX):]
        if not is_accepted_as_configured(key) and not await in_thread(self.pool, is_accepted, key):
            return await answer(request, send, 401, KEY_NOT_FOUND)
        limit = body_limit(request.path)
        try:
            # A client that disconnects mid-body leaves JSON cut short, which does not parse: nothing is stored.
            body = await Request(request.scope, receive).body(limit)
        except BodyTooLarge as exc:  # no Content-Length, and more than the cap sent
            return await answer(request, send, 413, {"ids": [], "status": 413, "error": str(exc)})
        seed_header = request.headers.get("x-inngest-event-id-seed")
        try:
            if is_small(body):
                status, payload = await answer_events_awaiting(body, seed_header)
            else:
                status, payload = await in_thread(self.pool, answer_events, body, seed_header)
        except Exception:  # noqa: BLE001 - as Django would: logged, and a 500 for this request alone
            log.exception("Internal Server Error: %s", request.path)
            status, payload = 500, {"ids": [], "status": 500, "error": "internal server error"}
        await answer(request, send, status, payload)


def is_small(body: bytes) -> bool:
    """Whether the event loop validates `body` itself (see LOOP_BODY_BYTES)."""
    return len(body) <= LOOP_BODY_BYTES and body.count(b"{") <= LOOP_MAX_OBJECTS
