"""A trivial app for bench/call_client.py: reads the body and answers 206 with one StepRun op, as an
SDK would, at once (GET answers 200, for the readiness check)."""
from __future__ import annotations

import json
from typing import Callable, Iterable

ANSWER = json.dumps([{"op": "StepRun", "id": "abc", "name": "s1", "data": {"ok": 1}}]).encode()


def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
    environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    status = "206 Partial Content" if environ["REQUEST_METHOD"] == "POST" else "200 OK"
    start_response(status, [("Content-Type", "application/json"), ("X-Inngest-SDK", "inngest-py:v0.5.19"),
                            ("Content-Length", str(len(ANSWER)))])
    return [ANSWER]
