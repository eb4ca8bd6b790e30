"""Calls to apps over libcurl (executor/app_http.py) behave as the urllib3 client before them did:
redirects, the headers sent, methods, kept-alive connections (and none shared over a fork), the
answer's cap after decoding, the environment's proxy ignored, the ssl module's trust store."""
from __future__ import annotations

import gzip
import itertools
import multiprocessing
import socket
import ssl
import threading
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import trustme

from executor.responses import SdkResponse
from executor.transport import MAX_RESPONSE_BYTES, CallRequest, EndpointCall, call_function


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]  # by lower-case name
    body: bytes
    connection: int  # the number of the connection it came on, counted by the app


class _App(BaseHTTPRequestHandler):
    """/to/<status>/<n>: redirects with <status> n times, then to /done (or ?location=); /gzip/<n> and /big/<n>: n
    spaces and [], gzipped or not; anything else: 200 with an SDK header."""

    protocol_version = "HTTP/1.1"
    seen: list[Seen]
    connections: Iterator[int]

    def setup(self) -> None:
        super().setup()
        self.connection_number = next(self.connections)

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.seen.append(Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body,
                              self.connection_number))
        parts = urlsplit(self.path).path.strip("/").split("/")
        if parts[0] == "to":
            status, hops = int(parts[1]), int(parts[2])
            location = parse_qs(urlsplit(self.path).query).get("location", ["/done"])[0]
            self._send(status, b"", ("Location", f"/to/{status}/{hops - 1}" if hops > 1 else location),
                       ("X-Inngest-No-Retry", "true"))
        elif parts[0] == "gzip":
            self._send(200, gzip.compress(b" " * int(parts[1]) + b"[]"), ("Content-Encoding", "gzip"))
        elif parts[0] == "big":
            self._send(200, b" " * int(parts[1]) + b"[]")
        else:
            self._send(200, b"[]", ("X-Inngest-SDK", "test:v1"))

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _answer  # noqa: N815

    def _send(self, status: int, body: bytes, *headers: tuple[str, str]) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            try:
                self.wfile.write(body)
            except OSError:
                pass  # the client stopped reading (an answer over the cap)

    def log_message(self, *args: object) -> None:
        pass


def serve(context: ssl.SSLContext | None = None) -> tuple[ThreadingHTTPServer, list[Seen]]:
    seen: list[Seen] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("App", (_App,), {"seen": seen, "connections": itertools.count()}))
    server.daemon_threads = True
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, seen


@pytest.fixture
def app() -> Iterator[tuple[str, list[Seen]]]:
    server, seen = serve()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()


def call(url: str, method: str | None = None, body: bytes | None = b"{}", content_type: str = "application/json") -> SdkResponse:
    request = CallRequest(url=url, run_id="r", fn_id="f", step_target="step", attempt=0, max_attempts=1, event={},
                          events=[], steps={}, stack=[], request_version=-1, disable_immediate_execution=False)
    if method is not None:  # a Durable Endpoint's call: its own method and body
        request = replace(request, endpoint=EndpointCall(method, url, body or b"", content_type))
    return call_function(request)


@pytest.mark.parametrize("status", [301, 302, 307, 308])
@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_a_redirect_sends_the_same_method_and_body_again(app, status: int, method: str) -> None:
    origin, seen = app
    answer = call(f"{origin}/to/{status}/2", method, b'{"n": 1}')
    assert answer.status == 200 and answer.has_sdk_header and not answer.is_no_retry  # the final answer's headers
    assert [(s.method, s.path, s.body, s.headers["content-type"]) for s in seen] == [
        (method, f"/to/{status}/2", b'{"n": 1}', "application/json"),
        (method, f"/to/{status}/1", b'{"n": 1}', "application/json"),
        (method, "/done", b'{"n": 1}', "application/json")]


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_a_303_is_followed_with_a_get_without_the_body_or_its_headers(app, method: str) -> None:
    origin, seen = app
    assert call(f"{origin}/to/303/1", method, b'{"n": 1}').status == 200
    assert [(s.method, s.path) for s in seen] == [(method, "/to/303/1"), ("GET", "/done")]
    assert seen[1].body == b"" and "content-type" not in seen[1].headers and "content-length" not in seen[1].headers
    assert seen[1].headers["x-run-id"] == "r"  # the other headers go along


@pytest.mark.parametrize("status", [300, 304, 399])
def test_other_3xx_answers_are_answers_not_redirects(app, status: int) -> None:
    origin, seen = app
    answer = call(f"{origin}/to/{status}/1")
    assert answer.status == status and answer.is_no_retry and len(seen) == 1


def test_twenty_redirects_are_followed_and_the_twenty_first_is_a_transport_error(app) -> None:
    origin, seen = app
    assert call(f"{origin}/to/307/20").status == 200 and len(seen) == 21
    seen.clear()
    too_many = call(f"{origin}/to/307/21")
    assert too_many.status is None and too_many.transport_error == "too many redirects (more than 20)" and len(seen) == 21


def test_the_headers_sent_are_the_servers_own_and_no_more(app) -> None:
    """libcurl adds `Accept: */*`, and `Expect: 100-continue` before a large body, unless told not to;
    an empty header value (the signature in dev) is sent, not dropped."""
    origin, seen = app
    big = b'{"blob": "' + b"x" * 2_000_000 + b'"}'
    assert call(f"{origin}/api?fnId=f", "PUT", big, "application/json; charset=utf-8").status == 200
    (put,) = seen
    assert put.body == big and put.headers["content-type"] == "application/json; charset=utf-8"
    assert sorted(put.headers) == ["accept-encoding", "content-length", "content-type", "host", "traceparent",
                                   "user-agent", "x-inngest-req-version", "x-inngest-server-kind",
                                   "x-inngest-signature", "x-run-id"]
    assert (put.headers["accept-encoding"], put.headers["x-inngest-signature"], put.headers["user-agent"]) == ("identity", "", "Inngest")


@pytest.mark.parametrize("method, body, content_length", [
    ("GET", None, None), ("DELETE", None, None), ("OPTIONS", None, None), ("HEAD", None, None),
    ("POST", None, "0"), ("PATCH", None, "0"), ("DELETE", b"[1]", "3"), ("GET", b"[1]", "3"),
], ids=["GET", "DELETE", "OPTIONS", "HEAD", "POST without a body", "PATCH without a body", "DELETE with a body",
        "GET with a body"])
def test_an_endpoint_is_called_with_its_own_method_and_body(app, method: str, body: bytes | None,
                                                            content_length: str | None) -> None:
    origin, seen = app
    assert call(f"{origin}/route", method, body).status == 200
    (request,) = seen
    assert (request.method, request.body, request.headers.get("content-length")) == (method, body or b"", content_length)


def test_a_connection_is_kept_alive_between_calls_but_not_after_a_cut_off_answer(app) -> None:
    origin, seen = app
    for _ in range(3):
        assert call(f"{origin}/api").status == 200
    assert call(f"{origin}/big/{2 * MAX_RESPONSE_BYTES}").transport_error.startswith("output_too_large")
    assert call(f"{origin}/api").status == 200
    assert [s.connection for s in seen] == [0, 0, 0, 0, 1]


def _call_in_child(url: str, done: multiprocessing.Queue) -> None:
    done.put(call(url).status)


def test_a_forked_process_opens_its_own_connection_and_leaves_the_parents_alone(app) -> None:
    """A Celery prefork child must not write on a socket its parent also uses."""
    origin, seen = app
    assert call(f"{origin}/api").status == 200
    context = multiprocessing.get_context("fork")
    done = context.Queue()
    child = context.Process(target=_call_in_child, args=(f"{origin}/api", done))
    child.start()
    assert done.get(timeout=30) == 200
    child.join(timeout=30)
    assert call(f"{origin}/api").status == 200
    assert [s.connection for s in seen] == [0, 1, 0]


def test_a_compressed_answer_is_decoded_and_capped_at_its_decoded_size(app) -> None:
    origin, _ = app
    small = call(f"{origin}/gzip/10")
    assert (small.status, small.body, small.body_bytes) == (200, [], 12)
    bomb = call(f"{origin}/gzip/{MAX_RESPONSE_BYTES}")  # about 8 KB on the wire
    assert bomb.status is None and bomb.transport_error.startswith("output_too_large")


@pytest.mark.parametrize("url", ["file:///etc/hostname", "ftp://127.0.0.1:9/x", "dict://127.0.0.1:9/x"])
def test_only_http_and_https_urls_are_called(url: str) -> None:
    """libcurl would read a file:// URL (or speak FTP, DICT...) if asked: an app's URL is not let."""
    answer = call(url)
    assert answer.status is None and answer.transport_error == f"not an HTTP URL: {url}?stepId=step"


def test_a_redirect_to_a_file_url_is_not_followed(app) -> None:
    origin, seen = app
    answer = call(f"{origin}/to/307/1?location=file:///etc/hostname")
    assert answer.status is None and answer.transport_error == "not an HTTP URL: file:///etc/hostname"


def test_a_proxy_set_in_the_environment_is_not_used(app, monkeypatch: pytest.MonkeyPatch) -> None:
    origin, seen = app
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    assert call(f"{origin}/api").status == 200 and len(seen) == 1


def test_an_informational_answer_before_the_final_one_is_skipped() -> None:
    """Only the final answer's headers count, read in any case."""
    listener = socket.create_server(("127.0.0.1", 0))

    def answer_once() -> None:
        connection, _ = listener.accept()
        with connection:
            request = b""
            while b"\r\n\r\n" not in request:
                request += connection.recv(65536)
            connection.sendall(b"HTTP/1.1 103 Early Hints\r\nX-Inngest-No-Retry: true\r\n\r\n"
                               b"HTTP/1.1 200 OK\r\nx-inngest-sdk: test:v1\r\nRETRY-AFTER: 5\r\nContent-Length: 2\r\n\r\n[]")

    threading.Thread(target=answer_once, daemon=True).start()
    with listener:
        answer = call(f"http://127.0.0.1:{listener.getsockname()[1]}/api")
    assert (answer.status, answer.has_sdk_header, answer.is_no_retry, answer.retry_after) == (200, True, False, "5")


def test_https_is_verified_against_the_ssl_modules_trust_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SSL_CERT_FILE names the CA file, as it does for the ssl module (libcurl's own default is not used)."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    server, seen = serve(context)
    url = f"https://127.0.0.1:{server.server_address[1]}/api"
    try:
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
        untrusted = call(url)
        ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
        trusted = call(url)
    finally:
        server.shutdown()
    assert untrusted.status is None and "certificate" in untrusted.transport_error
    assert trusted.status == 200 and len(seen) == 1
