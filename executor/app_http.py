"""One HTTP exchange with an app over libcurl (pycurl): the request, its redirects and the whole
answer, within a total deadline. executor/transport.py calls functions through it.

Why libcurl: a call worker spends much of its CPU in the HTTP client (issue 18), and libcurl, in
C, spends a fraction of what urllib3 and http.client do in Python: a whole call costs the calling
process about half the CPU it did over urllib3 (bench/call_client.py). libcurl also bounds the
whole exchange itself (CURLOPT_TIMEOUT_MS: from
connecting to the last byte read), where urllib3 needed a watchdog thread shutting sockets
(executor/call_deadlines.py, which executor/gateway.py still uses).

What the urllib3 client did is kept: kept-alive connections (one Curl handle per thread, a new
one after a fork), HTTP/1.1, the URL percent-encoded as urllib3 encoded it, a fresh DNS look-up
for each new connection, no proxy from the environment, the ssl module's trust store, the request
headers it sent (no `Expect: 100-continue`, no `Accept: */*`), a gzip or deflate answer decoded,
and redirects followed here as urllib3 followed them, rather than by libcurl (which follows any
3xx, and keeps Content-Type on a 303 and a custom method on any).
"""
from __future__ import annotations

import math
import os
import ssl
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urljoin

import pycurl
from urllib3.util import parse_url

MAX_REDIRECTS = 20
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# A 303 turns the request into a GET without a body; these describe the body and go with it.
BODY_HEADERS = frozenset({"content-encoding", "content-language", "content-location", "content-type",
                          "content-length", "digest", "last-modified", "transfer-encoding"})
# Sent with `Content-Length: 0` when they have no body, as http.client sends them.
METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
MAX_CONNECT_SECONDS = 10.0
# libcurl's own headers that http.client did not send ("Name:" removes one), and the encoding
# http.client asked for. libcurl still decodes a gzip or deflate answer (ACCEPT_ENCODING below).
FIXED_HEADERS = [b"Expect:", b"Accept:", b"Accept-Encoding: identity"]


class ExchangeError(Exception):
    """No usable answer; the text says why."""


class DeadlinePassed(ExchangeError):
    pass


class AnswerTooLarge(ExchangeError):
    pass


class ResponseHeaders(dict[str, str]):
    """The final answer's headers by lower-case name, read in any case; a repeated header's values
    joined with ", " (as urllib3 joined them)."""

    def add(self, name: str, value: str) -> None:
        key = name.lower()
        self[key] = f"{self[key]}, {value}" if key in self else value

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return super().get(name.lower(), default)


@dataclass(frozen=True)
class Answer:
    status: int
    headers: ResponseHeaders
    body: bytes


class _Handles(threading.local):
    curl: pycurl.Curl | None = None
    pid = 0


_handles = _Handles()
# A handle inherited over a fork shares its connections' sockets (and TLS state) with the parent:
# closing it would end them for the parent too, so the child keeps it, unused, for good.
_inherited: list[pycurl.Curl] = []


def _handle() -> pycurl.Curl:
    if _handles.pid != os.getpid():
        if _handles.curl is not None:
            _inherited.append(_handles.curl)
        _handles.curl, _handles.pid = pycurl.Curl(), os.getpid()
    return _handles.curl


def exchange(method: str, url: str, body: bytes | None, headers: dict[str, str], seconds: float,
             max_bytes: int) -> Answer:
    """The final answer, redirects followed, read in full within `seconds` of the start; raises
    ExchangeError (DeadlinePassed, AnswerTooLarge) when there is none."""
    deadline = time.monotonic() + seconds
    for _ in range(MAX_REDIRECTS + 1):
        answer = _perform(method, url, body, headers, deadline, max_bytes)
        location = answer.headers.get("location") if answer.status in REDIRECT_STATUSES else None
        if not location:
            return answer
        url = urljoin(url, location)
        if answer.status == 303:
            method, body = "GET", None
            headers = {name: value for name, value in headers.items() if name.lower() not in BODY_HEADERS}
    raise ExchangeError(f"too many redirects (more than {MAX_REDIRECTS})")


def _perform(method: str, url: str, body: bytes | None, headers: dict[str, str], deadline: float,
             max_bytes: int) -> Answer:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise DeadlinePassed()
    received = ResponseHeaders()
    chunks: list[bytes] = []
    size = 0

    def write(chunk: bytes) -> int | None:
        nonlocal size
        size += len(chunk)
        if size > max_bytes:
            return 0  # libcurl stops the transfer and closes the connection
        chunks.append(chunk)
        return None

    def header(line: bytes) -> None:
        if line.startswith(b"HTTP/"):
            received.clear()  # a new response: the one before was informational (1xx)
            return
        name, colon, value = line.decode("latin-1").partition(":")
        if colon and not size:  # after the body come trailers, which http.client ignored
            received.add(name.strip(), value.strip())

    curl = _handle()
    try:
        _set_request(curl, method, url, body, headers)
        curl.setopt(pycurl.TIMEOUT_MS, math.ceil(remaining * 1000))
        curl.setopt(pycurl.CONNECTTIMEOUT_MS, math.ceil(min(MAX_CONNECT_SECONDS, remaining) * 1000))
        curl.setopt(pycurl.WRITEFUNCTION, write)
        curl.setopt(pycurl.HEADERFUNCTION, header)
        curl.perform()
        status = curl.getinfo(pycurl.RESPONSE_CODE)
    except pycurl.error as exc:
        code, message = exc.args
        if code == pycurl.E_OPERATION_TIMEDOUT and time.monotonic() >= deadline:
            raise DeadlinePassed() from None
        if code == pycurl.E_WRITE_ERROR and size > max_bytes:
            raise AnswerTooLarge() from None
        errno = curl.getinfo(pycurl.OS_ERRNO)
        raise ExchangeError(f"{message} (errno {errno}: {os.strerror(errno)})" if errno else message) from None
    finally:
        # Options and callbacks go, with what they hold (the body, the answer); connections stay.
        curl.reset()
    return Answer(status, received, b"".join(chunks))


def _set_request(curl: pycurl.Curl, method: str, url: str, body: bytes | None, headers: dict[str, str]) -> None:
    scheme, sent_url = _sent_url(url)
    curl.setopt(pycurl.URL, sent_url)
    # libcurl also speaks file://, ftp:// and more; an app's URL (or a redirect) must not lead there.
    curl.setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
    curl.setopt(pycurl.HTTPHEADER, FIXED_HEADERS + [_header_line(name, value) for name, value in headers.items()])
    if method == "HEAD":
        curl.setopt(pycurl.NOBODY, 1)  # libcurl then expects no body after the headers
    elif body is None and method not in METHODS_WITH_BODY:
        curl.setopt(pycurl.HTTPGET, 1)
        if method != "GET":
            curl.setopt(pycurl.CUSTOMREQUEST, method)
    else:
        curl.setopt(pycurl.POSTFIELDS, body or b"")
        if method != "POST":
            curl.setopt(pycurl.CUSTOMREQUEST, method)
    curl.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1)
    curl.setopt(pycurl.PROXY, "")  # not from http_proxy and the like: urllib3's PoolManager ignored them
    curl.setopt(pycurl.ACCEPT_ENCODING, "")  # decode; the header itself is FIXED_HEADERS'
    curl.setopt(pycurl.NOSIGNAL, 1)
    curl.setopt(pycurl.MAXCONNECTS, 16)  # kept-alive connections per thread, to as many apps
    curl.setopt(pycurl.DNS_CACHE_TIMEOUT, 0)  # an app's new address is used from its next new connection
    if scheme == "https":
        trust = ssl.get_default_verify_paths()  # SSL_CERT_FILE and SSL_CERT_DIR, as the ssl module reads them
        if trust.cafile:
            curl.setopt(pycurl.CAINFO, trust.cafile)
        if trust.capath:
            curl.setopt(pycurl.CAPATH, trust.capath)


@lru_cache(maxsize=1024)  # an app's few URLs (one per step), called again and again
def _sent_url(url: str) -> tuple[str, str]:
    """The URL's scheme, and the URL as sent: percent-encoded as urllib3 sent it, without userinfo."""
    target = parse_url(url)
    scheme = target.scheme or "http"  # as urllib3 took a URL without one
    if scheme not in ("http", "https"):
        raise ExchangeError(f"not an HTTP URL: {url}")
    return scheme, f"{scheme}://{target.netloc}{target.request_uri}"


def _header_line(name: str, value: str) -> bytes:
    if "\r" in value or "\n" in value:
        raise ValueError(f"Invalid header value {value!r}")  # as http.client refused it
    # "Name;" is how libcurl sends a header with an empty value ("Name:" would remove it).
    return f"{name}: {value}".encode("latin-1") if value else f"{name};".encode("latin-1")
