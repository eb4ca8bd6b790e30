"""Requests the server makes for a step: `Gateway` (JS `step.fetch`) and `AIGateway` (JS and Python
`step.ai.infer`), shaped as Inngest's server makes them (protocol-next.md §3).

Made by the worker that got the SDK's answer, between the answer and the decision: on the calls'
queue (never the timers'), outside any database transaction, under the call's lease. The
decision then memoizes `{data}` or, once the function's retries are spent, `{error}`.

The AI formats authenticate each their own way: `openai-chat` and the other OpenAI-compatible
formats (`azure-openai`, `grok`, `openai-responses`) with `Authorization: Bearer <key>`,
`anthropic` with `x-api-key`, `gemini` with `?key=` in the URL, `bedrock` with the key as the
whole Authorization header. The key, and every header value the function gave, are secrets:
they never reach a memo, an error message or a log line (errors are scrubbed of them).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import urllib3
from django.conf import settings

from core.json_text import dump_json
from executor.call_deadlines import watched_pool, watchdog
from executor.opcodes import Op, Opcode, UnknownOpcodeError, parse_ops
from executor.responses import GatewayResult, SdkResponse
from executor.url_policy import Target, UrlRefused, approved_target

REDACTED = "[redacted]"
CONNECT_TIMEOUT = 10.0
MAX_REQUEST_BODY_BYTES = 4 * 1024 * 1024
_GATEWAY_OPS = {Opcode.GATEWAY, Opcode.AI_GATEWAY}
_GATEWAY_NAMES = {op.value.lower() for op in _GATEWAY_OPS}
METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}


@dataclass(frozen=True)
class OutgoingRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None
    secrets: tuple[str, ...]  # what must not appear in anything kept


class RequestRefused(ValueError):
    """The op asks for a request that cannot be made as it is: retrying would not help."""


def with_gateway_results(response: SdkResponse) -> SdkResponse:
    """The answer, with the outcome of each Gateway or AIGateway op it carries."""
    if response.status != 206 or not response.has_sdk_header or not _mentions_gateway(response.body):
        return response
    try:
        ops = [op for op in parse_ops(response.body) if op.op in _GATEWAY_OPS]
    except UnknownOpcodeError:
        return response  # the decision reports it
    results = {op.id: perform(op) for op in ops}
    grown = sum(len(dump_json(result.data)) for result in results.values())
    return replace(response, gateway_results=results, body_bytes=response.body_bytes + grown)


def _mentions_gateway(body: Any) -> bool:
    items = body if isinstance(body, list) else [body]
    return any(isinstance(item, dict) and str(item.get("op") or "").lower() in _GATEWAY_NAMES for item in items)


def perform(op: Op) -> GatewayResult:
    """Make the op's request; never raises: every outcome is a result."""
    error_name = "AIGatewayError" if op.op is Opcode.AI_GATEWAY else "GatewayError"
    secrets: tuple[str, ...] = ()
    try:
        request = ai_request(op.opts) if op.op is Opcode.AI_GATEWAY else fetch_request(op.opts)
        secrets = request.secrets
        status, headers, body = send(request)
    except (RequestRefused, UrlRefused) as exc:
        return GatewayResult(error=_error(error_name, f"The request was refused: {exc}", secrets), is_retriable=False)
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        return GatewayResult(error=_error(error_name, f"Error making {'AI' if error_name == 'AIGatewayError' else 'gateway'} "
                                                      f"request: {type(exc).__name__}: {exc}", secrets))
    if op.op is Opcode.GATEWAY:
        text = body.decode("utf-8", errors="replace")
        return GatewayResult(data={"url": request.url, "headers": headers, "body": text, "status_code": status})
    return _ai_result(status, body, secrets)


def _ai_result(status: int, body: bytes, secrets: tuple[str, ...]) -> GatewayResult:
    text = scrub(body.decode("utf-8", errors="replace"), secrets)
    if status > 299:
        error = _error("AIGatewayError", f"Error making AI request: unsuccessful status code: {status}", secrets)
        return GatewayResult(error={**error, "stack": text[:10_000] or '{"error":"Error making AI request"}'})
    try:
        return GatewayResult(data=json.loads(text) if text else None)
    except ValueError:
        return GatewayResult(error=_error("AIGatewayError", "Error making AI request: the answer is not JSON", secrets),
                             is_retriable=False)


def fetch_request(opts: dict) -> OutgoingRequest:
    """`step.fetch`: {url, method, headers, body (a string)}."""
    method = str(opts.get("method") or "POST").upper()
    if method not in METHODS:
        raise RequestRefused(f"method {method[:20]!r} is not one of {', '.join(sorted(METHODS))}")
    headers = _headers(opts.get("headers"))
    body = opts.get("body")
    data = None if body is None else (body if isinstance(body, str) else json.dumps(body)).encode()
    return OutgoingRequest(method, _url(opts), headers, data, tuple(headers.values()))


def ai_request(opts: dict) -> OutgoingRequest:
    """`step.ai.infer`: {url, headers, auth_key, format, body}, authenticated as its format wants."""
    url, key, form = _url(opts), str(opts.get("auth_key") or ""), str(opts.get("format") or "openai-chat")
    headers = {"Content-Type": "application/json"}
    if form == "gemini":
        parts = urlsplit(url)
        url = urlunsplit(parts._replace(query="&".join(q for q in (parts.query, urlencode({"key": key})) if q)))
    elif form == "bedrock":
        headers["Authorization"] = key
    elif form == "anthropic":
        headers["X-Api-Key"] = key
    else:
        headers["Authorization"] = f"Bearer {key}"
    given = _headers(opts.get("headers"))
    headers.update(given)
    body = json.dumps(opts.get("body") if opts.get("body") is not None else {}).encode()
    secrets = tuple(s for s in (key, quote(key, safe=""), *given.values()) if s)
    return OutgoingRequest("POST", url, headers, body, secrets)


def _url(opts: dict) -> str:
    url = opts.get("url")
    if not isinstance(url, str) or not url or len(url) > 8192:
        raise RequestRefused("the op has no url")
    return url


def _headers(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RequestRefused("headers must be a JSON object")
    headers = {canonical_header(str(k)): str(v) for k, v in value.items()}
    if any("\r" in text or "\n" in text for pair in headers.items() for text in pair):
        raise RequestRefused("a header contains a line break")
    return headers


def canonical_header(name: str) -> str:
    """`x-api-key` as `X-Api-Key`: names are sent as Inngest's server (Go) sends them, which
    some servers and the SDKs' own tests compare case-sensitively."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def send(request: OutgoingRequest) -> tuple[int, dict[str, str], bytes]:
    """The status, headers and whole body, within INNGEST_GATEWAY_TIMEOUT_SECONDS in all, from
    the address the URL policy approved; redirects are answers, not followed."""
    if request.body is not None and len(request.body) > MAX_REQUEST_BODY_BYTES:
        raise RequestRefused(f"the request body is larger than {MAX_REQUEST_BODY_BYTES} bytes")
    target = approved_target(request.url)
    # Within the call's deadline, which the lease keeper holds the call's lease for.
    seconds = min(settings.INNGEST_GATEWAY_TIMEOUT_SECONDS, settings.INNGEST_CALL_TIMEOUT_SECONDS)
    pool = _pool(target, urllib3.Timeout(connect=min(CONNECT_TIMEOUT, seconds), read=seconds))
    parts = urlsplit(request.url)
    path = urlunsplit(("", "", parts.path or "/", parts.query, ""))
    headers = {"Host": _host_header(target), "User-Agent": "Inngest", **request.headers}
    try:
        with watchdog.watch(seconds) as deadline:
            answer = pool.urlopen(request.method, path, body=request.body, headers=headers, redirect=False,
                                  retries=False, preload_content=False, assert_same_host=False)
            body = _read_capped(answer)
        if deadline.has_expired:
            raise urllib3.exceptions.TimeoutError(f"no complete answer within {seconds:g} s")
        joined = {key: ",".join(answer.headers.getlist(key)) for key in answer.headers}
        return answer.status, joined, body
    finally:
        pool.close()


def _pool(target: Target, timeout: urllib3.Timeout) -> urllib3.HTTPConnectionPool:
    if target.scheme == "https":
        # Connected to the approved address; TLS still checks the certificate against the name.
        return watched_pool("https", target.address, target.port, timeout=timeout, maxsize=1,
                            server_hostname=target.host, assert_hostname=target.host)
    return watched_pool("http", target.address, target.port, timeout=timeout, maxsize=1)


def _host_header(target: Target) -> str:
    host = f"[{target.host}]" if ":" in target.host else target.host
    default = 443 if target.scheme == "https" else 80
    return host if target.port == default else f"{host}:{target.port}"


def _read_capped(answer: urllib3.BaseHTTPResponse) -> bytes:
    limit = settings.INNGEST_GATEWAY_MAX_RESPONSE_BYTES
    chunks, size = [], 0
    for chunk in answer.stream(256 * 1024, decode_content=True):
        size += len(chunk)
        if size > limit:
            answer.close()
            raise RequestRefused(f"the answer is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    return text


def _error(name: str, message: str, secrets: tuple[str, ...]) -> dict[str, str]:
    return {"name": name, "message": scrub(message, secrets)}
