"""Calling an app over HTTP: the URL kept as registered, streaming answers, the body size limit."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest

from executor.transport import MAX_RESPONSE_BYTES, CallRequest, call_function, read_response, with_step_id


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

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers["Content-Length"]))
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


def request_to(server: ThreadingHTTPServer) -> CallRequest:
    url = f"http://127.0.0.1:{server.server_address[1]}/api/inngest?fnId=f&stepId=step"
    return CallRequest(url=url, run_id="r", fn_id="f", step_target="step", attempt=0, max_attempts=1, event={},
                       events=[], steps={}, stack=[], request_version=-1, disable_immediate_execution=False)


def test_answer_over_8_mib_is_refused_and_the_next_call_still_works(app_server: ThreadingHTTPServer) -> None:
    _Handler.size = MAX_RESPONSE_BYTES + 10
    too_big = call_function(request_to(app_server))
    assert too_big.status is None and too_big.transport_error.startswith("output_too_large")
    _Handler.size = 2
    assert call_function(request_to(app_server)).status == 200


def test_unreachable_app_is_a_transport_error() -> None:
    request = CallRequest(url="http://127.0.0.1:9/api", run_id="r", fn_id="f", step_target="step", attempt=0,
                          max_attempts=1, event={}, events=[], steps={}, stack=[], request_version=-1,
                          disable_immediate_execution=False)
    response = call_function(request)
    assert response.status is None and "Connection refused" in response.transport_error
