"""`POST /v1/checkpoint/{runId}/async` served by the ASGI worker itself, without Django's request
cycle (inngest_project/native_route.py).

A JS SDK v4 app reports each step it runs inside a call here, and waits for the answer before it
runs the next one: the endpoint's time is on every step's path. Its work is two round trips to
PostgreSQL (executor/checkpoints.py); Django's request cycle around it cost about as much again
(bench/README.md). What it answers is still decided once, by executor/api/sdk.py
`answer_async_checkpoint`, run in this route's thread pool (the ORM is synchronous).

Besides the requests native_route.py leaves to Django, this route leaves it any other path under
/v1/checkpoint, and a request the signing key refuses (Django answers it 401, as before).
"""
from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

from django.core.handlers.asgi import ASGIRequest

from executor.api.sdk import answer_async_checkpoint
from inngest_project.middleware import body_limit, is_refused_by_signing_key
from inngest_project.native_route import answer, in_thread, log, plain_post
from realtime.http import BodyTooLarge, Receive, Request, Send

# Django's `<str:run_id>`: one path segment, not empty.
_PATH = re.compile(r"/v1/checkpoint/(?P<run_id>[^/]+)/async")


class CheckpointRoute:
    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self.pool = pool

    @staticmethod
    def claim(scope: dict) -> ASGIRequest | None:
        if scope["type"] != "http" or _PATH.fullmatch(scope["path"]) is None:
            return None
        request = plain_post(scope)
        if request is None or is_refused_by_signing_key(request.path, request.method or "", request.headers.get("Authorization", "")):
            return None
        return request

    async def __call__(self, request: ASGIRequest, receive: Receive, send: Send) -> None:
        run_id = _PATH.fullmatch(request.path)["run_id"]
        try:
            body = await Request(request.scope, receive).body(body_limit(request.path))
        except BodyTooLarge as exc:  # no Content-Length, and more than the cap sent
            return await answer(request, send, 413, {"status": 413, "error": str(exc)})
        try:
            status, payload = await in_thread(self.pool, answer_async_checkpoint, run_id, body)
        except Exception:  # noqa: BLE001 - as Django would: logged, and a 500 for this request alone
            log.exception("Internal Server Error: %s", request.path)
            status, payload = 500, {"status": 500, "error": "internal server error"}
        await answer(request, send, status, payload)
