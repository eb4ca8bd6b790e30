"""The apps the chaos suite calls: a well-behaved one written with the official SDK, and a
misbehaving one that hangs, drops the connection, answers garbage or answers 10 MB."""
from __future__ import annotations

import collections
import datetime
import http.server
import logging
import threading
import time
import uuid

import flask
import inngest
import inngest.flask
import requests
from werkzeug.serving import make_server

from tests.sdk_app import free_port

FLOW_EVENT = "chaos/flow"
FLOW_STEPS = ("one", "two")


class FlowApp:
    """One function: a step, a one-second durable sleep, a step. Each step returns a fresh token,
    so a step executed twice would show as a run output that differs from the stored step."""

    def __init__(self, server_url: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/api/inngest"
        self.executions: collections.Counter[tuple[str, str]] = collections.Counter()
        self.lock = threading.Lock()
        client = inngest.Inngest(app_id="chaos", is_production=False, api_base_url=server_url,
                                 event_api_base_url=server_url, logger=logging.getLogger("chaos-app"))
        app = flask.Flask("chaos")
        inngest.flask.serve(app, client, [self._flow(client)])
        self._server = make_server("127.0.0.1", self.port, app, threaded=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _flow(self, client: inngest.Inngest) -> inngest.Function:
        def step(ctx: inngest.ContextSync, name: str, n: int) -> dict:
            with self.lock:
                self.executions[(ctx.run_id, name)] += 1
            return {"n": n, "token": uuid.uuid4().hex}

        @client.create_function(fn_id="flow", trigger=inngest.TriggerEvent(event=FLOW_EVENT), retries=5)
        def flow(ctx: inngest.ContextSync) -> dict:
            one = ctx.step.run("one", lambda: step(ctx, "one", ctx.event.data["n"]))
            ctx.step.sleep("nap", datetime.timedelta(seconds=1))
            two = ctx.step.run("two", lambda: step(ctx, "two", one["n"] * 2))
            return {"one": one, "two": two}

        return flow

    def sync(self) -> None:
        answer = requests.put(self.url, timeout=30)
        assert answer.status_code == 200, answer.text

    def re_executed_steps(self, run_ids: set[str]) -> int:
        """Step bodies of these runs the app ran more than once (allowed: execution is at least
        once, as a worker can die after the app answered; only the recorded output must be unique)."""
        with self.lock:
            return sum(count - 1 for (run_id, _), count in self.executions.items() if count > 1 and run_id in run_ids)

    def stop(self) -> None:
        self._server.shutdown()


HUGE_BODY_BYTES = 10 * 1024 * 1024
BAD_BEHAVIOURS = ("hang", "close", "garbage", "huge")


class _BadHandler(http.server.BaseHTTPRequestHandler):
    hang_seconds = 30.0

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        behaviour = self.path.split("?")[0].rsplit("/", 1)[-1]
        if behaviour == "hang":
            time.sleep(self.hang_seconds)
            self.close_connection = True
        elif behaviour == "close":
            self.close_connection = True  # no status line, no body: the connection just ends
        elif behaviour == "garbage":
            self._answer(b"\x00\xff<html>not json at all{{")
        elif behaviour == "huge":
            self._answer(b'{"data": "' + b"x" * HUGE_BODY_BYTES + b'"}')

    def _answer(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class BadApp:
    """A plain HTTP server, not an SDK: it registers itself with a hand-written sync body."""

    def __init__(self, hang_seconds: float) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/api"
        handler = type("Handler", (_BadHandler,), {"hang_seconds": hang_seconds})
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def register(self, server_url: str) -> None:
        functions = [{
            "id": f"chaos-bad-{behaviour}", "name": behaviour,
            "triggers": [{"event": f"chaos/bad.{behaviour}"}],
            "steps": {"step": {"id": "step", "name": "step", "retries": {"attempts": 1}, "runtime": {
                "type": "http", "url": f"{self.url}/{behaviour}?fnId=chaos-bad-{behaviour}&stepId=step"}}},
        } for behaviour in BAD_BEHAVIOURS]
        body = {"appname": "chaos-bad", "deploy_type": "ping", "framework": "none", "sdk": "py:v0.5.19",
                "url": self.url, "v": "0.1", "functions": functions}
        answer = requests.post(f"{server_url}/fn/register", json=body, timeout=30)
        assert answer.status_code == 200, answer.text

    def stop(self) -> None:
        self._server.shutdown()
