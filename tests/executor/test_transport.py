"""Calling an app over HTTP: the URL kept as registered, streaming answers, the body size limit."""
from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest
from django.test import override_settings

from executor.transport import MAX_RESPONSE_BYTES, CallRequest, call_function, read_response, with_step_id
from runs.trace_context import trace_id


@pytest.mark.parametrize("url, target, expected", [
    ("http://h/api/inngest?fnId=app-fn&stepId=step", "abc", "http://h/api/inngest?fnId=app-fn&stepId=abc"),
    ("http://h/api/inngest?fnId=app-%25%24%5E%26%2A&stepId=step", "step",
     "http://h/api/inngest?fnId=app-%25%24%5E%26%2A&stepId=step"),
    ("http://h/api/inngest?fnId=x", "step", "http://h/api/inngest?fnId=x&stepId=step"),
    ("http://h/api/inngest?step=step&fnId=x", "a b", "http://h/api/inngest?step=step&fnId=x&stepId=a%20b"),
], ids=["replaces stepId", "keeps an encoded fnId byte for byte", "adds a missing stepId", "encodes the target"])
def test_step_id_is_set_and_the_rest_of_the_url_kept(url: str, target: str, expected: str) -> None:
    assert with_step_id(url, target) == expected


def test_streamed_201_answer_is_unwrapped_to_its_real_status() -> None:
    envelope = {"status": 206, "headers": {"X-Inngest-SDK": "inngest-py:v0.5.19", "x-inngest-req-version": "2"},
                "body": json.dumps([{"op": "StepRun", "id": "a", "data": 1}])}
    response = read_response(201, {"X-Inngest-SDK": "x"}, b"   " + json.dumps(envelope).encode())
    assert (response.status, response.has_sdk_header, response.request_version) == (206, True, 2)
    assert response.body == [{"op": "StepRun", "id": "a", "data": 1}]


def test_non_json_body_is_kept_as_text() -> None:
    response = read_response(500, {}, b"<html>proxy error</html>")
    assert response.body == "<html>proxy error</html>" and not response.has_sdk_header


class _Handler(BaseHTTPRequestHandler):
    size = 0
    seen: list[tuple[str, str | None]] = []  # (path, X-Inngest-Step-ID) of each call
    traceparents: list[str | None] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers["Content-Length"]))
        self.seen.append((self.path, self.headers["X-Inngest-Step-ID"]))
        self.traceparents.append(self.headers["traceparent"])
        body = b"x" * self.size
        self.send_response(200)
        self.send_header("X-Inngest-SDK", "test:v1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def app_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


def request_to(server: ThreadingHTTPServer, step_target: str = "step") -> CallRequest:
    url = f"http://127.0.0.1:{server.server_address[1]}/api/inngest?fnId=f&stepId=step"
    return CallRequest(url=url, run_id="r", fn_id="f", step_target=step_target, attempt=0, max_attempts=1, event={},
                       events=[], steps={}, stack=[], request_version=-1, disable_immediate_execution=False)


def test_answer_over_8_mib_is_refused_and_the_next_call_still_works(app_server: ThreadingHTTPServer) -> None:
    _Handler.size = MAX_RESPONSE_BYTES + 10
    too_big = call_function(request_to(app_server))
    assert too_big.status is None and too_big.transport_error.startswith("output_too_large")
    _Handler.size = 2
    assert call_function(request_to(app_server)).status == 200


def test_every_call_carries_its_own_span_in_the_runs_trace(app_server: ThreadingHTTPServer) -> None:
    """The JS SDK attributes AI spans to a step (as `inngest.ai` metadata) only in a traced call."""
    _Handler.size, _Handler.traceparents = 2, []
    for request_id in ("call-1", "call-2"):
        assert call_function(replace(request_to(app_server), request_id=request_id)).status == 200
    other_run = replace(request_to(app_server), run_id="r2", request_id="call-1")
    assert call_function(other_run).status == 200
    parsed = [re.fullmatch(r"00-([0-9a-f]{32})-([0-9a-f]{16})-01", header) for header in _Handler.traceparents]
    assert all(parsed) and len(parsed) == 3
    (first, second, elsewhere) = [(m.group(1), m.group(2)) for m in parsed]
    assert first[0] == second[0] != elsewhere[0] and first[1] != second[1]
    assert first[0] == trace_id("r")  # the trace the run's trace API shows


@pytest.mark.parametrize("target, header", [
    ("0f3a", "0f3a"),
    ("\U0001f600", "%F0%9F%98%80"),
    ("a\r\nX-Evil: 1", "a%0D%0AX-Evil%3A%201"),
    ("caf\u00e9", "caf%C3%A9"),
], ids=["hex, as SDKs hash ids", "emoji", "line break", "latin-1"])
def test_a_step_id_of_any_text_is_called_with_a_header_that_can_be_sent(app_server: ThreadingHTTPServer, target: str,
                                                                        header: str) -> None:
    """Found by the hostile-app property test: a planned step whose id was not latin-1 failed
    every call with a UnicodeEncodeError before it left the server."""
    _Handler.size, _Handler.seen = 2, []
    assert call_function(request_to(app_server, target)).status == 200
    assert _Handler.seen == [(f"/api/inngest?fnId=f&stepId={header}", header)]


@pytest.mark.parametrize("steps", [{"a": {"data": {"\ud800": 1}}}, {"a": {"data": "\udfff"}}, {"a": {"data": float("nan")}}],
                         ids=["lone surrogate in a key", "lone surrogate in a value", "NaN"])
def test_a_signed_call_carries_step_outputs_jcs_cannot_write(app_server: ThreadingHTTPServer, steps: dict) -> None:
    """Found by the hostile-app property test: with a signing key, a step output holding an
    object key with a lone surrogate failed every later call (UnicodeEncodeError from the JCS
    library, reported as "Unable to reach SDK URL")."""
    _Handler.size, _Handler.seen = 2, []
    request = replace(request_to(app_server), steps=steps)
    with override_settings(INNGEST_SIGNING_KEY="signkey-test-" + "ab" * 32):
        answer = call_function(request)
    assert answer.status == 200 and answer.transport_error is None and len(_Handler.seen) == 1


def test_unreachable_app_is_a_transport_error() -> None:
    request = CallRequest(url="http://127.0.0.1:9/api", run_id="r", fn_id="f", step_target="step", attempt=0,
                          max_attempts=1, event={}, events=[], steps={}, stack=[], request_version=-1,
                          disable_immediate_execution=False)
    response = call_function(request)
    assert response.status is None and "Connection refused" in response.transport_error


@pytest.mark.parametrize("status, content, problem", [
    (206, b"[" * 1000 + b"]" * 1000, "nested more than 200 levels deep"),  # past Python's recursion limit
    (206, b"[" * 300 + b"]" * 300, "nested more than 200 levels deep"),  # readable, but too deep for the UI and CEL
    (201, b'{"status": "abc", "body": "[]"}', "status is not an HTTP status code"),
    (201, b'{"status": true, "body": "[]"}', "status is not an HTTP status code"),
    (201, b'{"status": 99999, "body": "[]"}', "status is not an HTTP status code"),
    (201, b'{"status": 206, "headers": ["x"], "body": "[]"}', "headers are not a JSON object"),
    (201, b'{"status": 206, "body": "' + b"[" * 1000 + b"]" * 1000 + b'"}', "nested more than 200 levels deep"),
], ids=["deeper than the stack", "deeper than 200", "text status", "boolean status", "status out of range",
        "headers not an object", "deep streamed body"])
def test_an_answer_that_cannot_be_used_says_why(status: int, content: bytes, problem: str) -> None:
    response = read_response(status, {"X-Inngest-SDK": "x"}, content)
    assert response.status == status and response.has_sdk_header and problem in response.answer_error


@pytest.mark.parametrize("header, expected", [("2", 2), ("99999", None), ("-5", None), ("²", None), ("x", None)])
def test_request_version_outside_a_small_integer_is_ignored(header: str, expected: int | None) -> None:
    assert read_response(206, {"X-Inngest-SDK": "x", "X-Inngest-Req-Version": header}, b"[]").request_version == expected


class _DripHandler(BaseHTTPRequestHandler):
    """Answers a byte at a time, one every 0.2 s: each read is quick, the whole answer is not."""

    protocol_version = "HTTP/1.1"
    drip_headers = False

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers["Content-Length"]))
        head = b"HTTP/1.1 200 OK\r\nX-Inngest-SDK: test:v1\r\nContent-Length: 40\r\n\r\n"
        for byte in [head[i:i + 1] for i in range(len(head))] if self.drip_headers else [head]:
            self.wfile.write(byte)
            self.wfile.flush()
            time.sleep(0.2 if self.drip_headers else 0)
        try:
            for _ in range(40):
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(0.2)
        except OSError:
            pass  # the server hung up: what the deadline is for

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("drip_headers", [False, True], ids=["body", "headers"])
def test_a_dripping_answer_is_cut_off_at_the_call_deadline(app_server: ThreadingHTTPServer, drip_headers: bool) -> None:
    drip = ThreadingHTTPServer(("127.0.0.1", 0), type("Drip", (_DripHandler,), {"drip_headers": drip_headers}))
    threading.Thread(target=drip.serve_forever, daemon=True).start()
    try:
        with override_settings(INNGEST_CALL_TIMEOUT_SECONDS=1):
            started = time.monotonic()
            response = call_function(request_to(drip))
            elapsed = time.monotonic() - started
    finally:
        drip.shutdown()
    assert response.status is None and response.transport_error.startswith("timeout: the app did not answer in full within 1 s")
    assert 0.9 < elapsed < 2.5  # the whole answer would take 8 s or more
    _Handler.size = 2
    assert call_function(request_to(app_server)).status == 200  # the pool goes on working
