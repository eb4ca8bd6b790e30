"""A hand-written app, not an SDK, that answers each call with the bytes a script gives: the
broken app the server must survive (JSON nested past the stack, malformed streamed envelopes,
overlong ids, endless empty answers, outputs past the limits)."""
from __future__ import annotations

import collections
import http.server
import json
import threading
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

import requests

from tests.sdk_app import free_port


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=lambda: {"X-Inngest-SDK": "scripted:v0.1", "Content-Type": "application/json"})


def ops(*items: dict) -> Answer:
    return Answer(206, json.dumps(list(items)).encode())


def step_run(step_id: str, data: Any) -> dict:
    return {"op": "StepRun", "id": step_id, "name": step_id, "data": data}


def _next_step(size: int) -> Callable[[dict], Answer]:
    """A step of `size` characters of output per call, each under a new id: the run only grows."""
    return lambda body: ops(step_run(f"s{len(body['steps'])}", "x" * size))


def _echo_memo(value: bytes) -> Callable[[dict], Answer]:
    """Like an SDK: a step returns `value` (raw JSON), then the function returns the memo it gets."""
    def script(body: dict) -> Answer:
        if "odd" in body["steps"]:
            return Answer(200, json.dumps(body["steps"]["odd"]["data"]).encode())
        return Answer(206, b'[{"op":"StepRun","id":"odd","name":"odd","data":' + value + b"}]")

    return script


# name: (retries, script from the call's body to the answer)
SCRIPTS: dict[str, tuple[int, Callable[[dict], Answer]]] = {
    "deep": (1, lambda body: Answer(206, b'[{"op":"StepRun","id":"deep","data":' + b"[" * 1000 + b"]" * 1000 + b"}]")),
    "bad-envelope": (1, lambda body: Answer(201, b'{"status": "abc", "headers": {}, "body": "[]"}')),
    "long-id": (1, lambda body: ops(step_run("x" * 65, 1))),
    "long-wait-name": (1, lambda body: ops({"op": "WaitForEvent", "id": "w", "opts": {"event": "e" * 300, "timeout": "1h"}})),
    "big-output": (1, lambda body: ops(step_run("big", "x" * 150_000))),
    "empty": (1, lambda body: ops()),
    "many-steps": (1, _next_step(1)),
    "growing-state": (1, _next_step(90_000)),
    "same-step": (1, lambda body: ops(step_run("again", 1))),
    "same-sleep": (1, lambda body: ops({"op": "Sleep", "id": "nap", "name": "nap", "opts": {"duration": "1s"}})),
    "surrogate": (1, _echo_memo(b'{"s": "half \\ud800 pair", "pair": "\\ud83d\\ude00"}')),
}


class ScriptedApp:
    """Serves every script in SCRIPTS as a function `scripted-<name>`, triggered by `scripted/<name>`."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/api"
        self.calls: collections.Counter[tuple[str, str]] = collections.Counter()  # (script, run id)
        self.bodies: collections.defaultdict[tuple[str, str], list[dict]] = collections.defaultdict(list)
        self.server_url, self.headers = "", {}
        self.lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"app": self})
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def answer(self, name: str, body: dict) -> Answer:
        run_id = body["ctx"]["run_id"]
        if body.get("use_api"):  # the memo is too large for the call body: fetch it, as SDKs do
            actions = requests.get(f"{self.server_url}/v0/runs/{run_id}/actions", headers=self.headers, timeout=10)
            body = {**body, "steps": actions.json()}
        with self.lock:
            self.calls[(name, run_id)] += 1
            self.bodies[(name, run_id)].append(body)
        return SCRIPTS[name][1](body)

    def register(self, server_url: str, headers: dict[str, str]) -> None:
        self.server_url, self.headers = server_url, headers
        functions = [{
            "id": f"scripted-{name}", "name": name, "triggers": [{"event": f"scripted/{name}"}],
            "steps": {"step": {"id": "step", "name": "step", "retries": {"attempts": retries}, "runtime": {
                "type": "http", "url": f"{self.url}/{name}?fnId=scripted-{name}&stepId=step"}}},
        } for name, (retries, _) in SCRIPTS.items()]
        body = {"appname": "scripted", "deploy_type": "ping", "framework": "none", "sdk": "py:v0.5.19",
                "url": self.url, "v": "0.1", "functions": functions}
        answer = requests.post(f"{server_url}/fn/register", json=body, headers=headers, timeout=30)
        assert answer.status_code == 200, answer.text

    def stop(self) -> None:
        self._server.shutdown()


class _Handler(http.server.BaseHTTPRequestHandler):
    app: ScriptedApp

    def log_message(self, *args: object) -> None:
        pass

    def do_PUT(self) -> None:  # noqa: N802 - a sync request, as the dev server sends to known apps
        self.app.register(self.app.server_url, self.app.headers)
        self._send(Answer(200, b'{"message": "Successfully registered"}'))

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        path = urlsplit(self.path)
        name = path.path.rsplit("/", 1)[-1]
        assert parse_qs(path.query)["fnId"] == [f"scripted-{name}"]
        self._send(self.app.answer(name, body))

    def _send(self, answer: Answer) -> None:
        self.send_response(answer.status)
        for key, value in answer.headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)
