"""A stand-in for an AI provider and any HTTP API, served on a thread inside the test run: the
server's step.ai.infer and step.fetch requests land here, and the tests read what arrived.

Every POST is answered with an OpenAI-shaped chat completion that echoes the request's last
message; a body with `"fail_first": n` gets 500 for its first n requests (per `"attempt_key"`);
`GET /echo` answers with the method, path and a custom header; `GET /big?bytes=n` with n bytes;
`GET /slow?seconds=s` after s seconds; `GET /redirect` with a 302 to /echo.
"""
from __future__ import annotations

import collections
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class FakeModelServer:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.failures: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def requests_with(self, marker: str) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if marker in json.dumps(r)]


def completion(content: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": "fake-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def _handler_for(fake: FakeModelServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self._record(b"")
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            if parts.path == "/big":
                self._answer(200, "x" * int(query["bytes"]))
            elif parts.path == "/slow":
                time.sleep(float(query["seconds"]))
                self._answer(200, "late")
            elif parts.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", "/echo")
                self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                self._answer(200, {"method": "GET", "path": parts.path, "tag": self.headers.get("x-tag")})

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = self._record(raw)
            if isinstance(body, dict) and body.get("fail_first"):
                with fake.lock:
                    fake.failures[str(body.get("attempt_key"))] += 1
                    failing = fake.failures[str(body.get("attempt_key"))] <= int(body["fail_first"])
                if failing:
                    self._answer(500, {"error": {"message": "the model is overloaded"}})
                    return
            messages = body.get("messages") if isinstance(body, dict) else None
            last = messages[-1].get("content") if isinstance(messages, list) and messages else raw.decode(errors="replace")
            self._answer(200, completion(f"echo: {last}"))

        def _record(self, raw: bytes) -> Any:
            parts = urlsplit(self.path)
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
            with fake.lock:
                fake.requests.append({"method": self.command, "path": parts.path, "query": parse_qs(parts.query),
                                      "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
            return body

        def _answer(self, status: int, payload: Any) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                self.wfile.write(data)
            except BrokenPipeError:
                pass  # the client gave up (the deadline tests)

    return Handler
