"""Calling a function over HTTP: the request body (§3.4), headers (§3.2) and the answer (§4.1)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import rfc8785
from django.conf import settings

from core.json_body import MAX_DEPTH, is_nested_deeper
from executor import app_http, signing
from executor.canonical_body import RunParts, Unjoinable, canonical_body
from executor.responses import SdkResponse
from runs.trace_context import traceparent

MAX_RESPONSE_BYTES = 8 * 1024 * 1024
MAX_REQUEST_VERSION = 32767  # the column is a small integer; SDKs send 0, 1 or 2


@dataclass(frozen=True)
class EndpointCall:
    """How to call a Durable Endpoint's run (executor/endpoints.py): its own request again, with
    the run's id in the headers; the SDK fetches the run's state from the API (`use_api`)."""

    method: str
    url: str  # the route, with the request's query string
    body: bytes
    content_type: str


@dataclass(frozen=True)
class CallRequest:
    url: str
    run_id: str
    fn_id: str
    step_target: str
    attempt: int
    max_attempts: int
    event: dict
    events: list
    steps: dict
    stack: list
    request_version: int
    disable_immediate_execution: bool
    # Async checkpointing (protocol-next.md §1): the pending call the SDK may report steps against
    # (ctx.qi_id) and the claim it is made under; "" when checkpointing is not offered.
    queue_item_id: str = ""
    generation: int = 0
    endpoint: EndpointCall | None = None
    # Sent as Inngest sends them (protocol.md §3.2); SDKs expose them as ctx.requestId / ctx.jobId.
    request_id: str = ""  # this call's own id
    job_id: str = ""  # the unit of work the call is for, the same on its retries
    # The run's deferred runs the SDK must not report again: {hashed id: {"abortable": bool}}.
    defers: dict = field(default_factory=dict)
    # The run's parts already canonicalized for a signed body (executor/canonical_body.py), kept
    # by the worker across the run's calls (run_loop's RunMemo); by default, this call's alone.
    parts: RunParts = field(default_factory=RunParts, compare=False)

    @property
    def traceparent(self) -> str:
        """W3C trace context: the JS SDK attributes AI spans to steps only in a traced call."""
        return traceparent(self.run_id, self.request_id or f"{self.step_target}:{self.attempt}")

    def body(self, use_api: bool = False) -> dict[str, Any]:
        """The call body; with `use_api` the events and steps are left for the SDK to fetch
        from /v0/runs/{id}/batch and /actions (§1.9), because they are too large to send."""
        ctx = {
            "fn_id": self.fn_id,
            "run_id": self.run_id,
            "env": "",
            "step_id": "step",
            "attempt": self.attempt,
            "max_attempts": self.max_attempts,
            "stack": {"stack": self.stack, "current": len(self.stack)},
            "disable_immediate_execution": self.disable_immediate_execution,
            "use_api": use_api,
        }
        if self.queue_item_id:
            ctx["qi_id"] = self.queue_item_id
        return {
            "event": self.event,
            "events": [] if use_api else self.events,
            "steps": {} if use_api else self.steps,
            "defers": self.defers,
            "ctx": ctx,
            "version": self.request_version,
            "use_api": use_api,
        }


@lru_cache(maxsize=4096)  # each call of a run's steps asks again for the same few
def with_step_id(url: str, step_target: str) -> str:
    """The registered URL with `stepId` set; every other byte of it is kept as registered."""
    parts = urlsplit(url)
    pairs = [p for p in parts.query.split("&") if p and not p.startswith("stepId=")]
    pairs.append("stepId=" + quote(step_target, safe=""))
    return urlunsplit(parts._replace(query="&".join(pairs)))


def header_safe(value: str) -> str:
    """An app's step id as a header value: as it is when it is printable ASCII, else encoded as
    in the URL. Any other text cannot be sent as a header (http.client writes headers in latin-1
    and refuses line breaks), which made every call to a step with such an id fail before it left."""
    return value if value.isascii() and value.isprintable() else quote(value, safe="")


def call_function(request: CallRequest) -> SdkResponse:
    """The app's answer, or why there is none; never raises, so every call has an outcome."""
    try:
        return _call(request)
    except Exception as exc:  # noqa: BLE001 - whatever went wrong is recorded as the attempt's error
        return SdkResponse(status=None, transport_error=f"{type(exc).__name__}: {exc}")


def _call(request: CallRequest) -> SdkResponse:
    if request.endpoint is not None:
        return _call_endpoint(request, request.endpoint)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Inngest",
        "X-Inngest-Server-Kind": settings.INNGEST_SERVER_KIND,
        "X-Inngest-Step-ID": header_safe(request.step_target),
        "X-Run-ID": request.run_id,
        "x-inngest-req-version": str(request.request_version),
        "traceparent": request.traceparent,
    }
    if request.queue_item_id:
        headers["X-Inngest-Generation-Id"] = str(request.generation)
    if request.request_id:
        headers["x-request-id"] = request.request_id
    if request.job_id:
        headers["x-inngest-job-id"] = request.job_id
    keys = signing.configured_keys()
    payload = _encode(request.body(), keys, request.parts)
    if len(payload) > settings.INNGEST_MAX_CALL_BODY_BYTES:
        payload = _encode(request.body(use_api=True), keys, request.parts)
    if keys:
        headers["X-Inngest-Signature"] = signing.signature(payload, keys[0])
    return _read_answer(_post(with_step_id(request.url, request.step_target), payload, headers), keys)


def _call_endpoint(request: CallRequest, endpoint: EndpointCall) -> SdkResponse:
    """A Durable Endpoint is called as Inngest does: the route, its method and body, and headers
    that make the SDK run the handler for the run (x-run-id with a signature header, present
    even when empty in dev) and target a step."""
    keys = signing.configured_keys()
    headers = {
        "Content-Type": endpoint.content_type or "application/json",
        "User-Agent": "Inngest",
        "X-Inngest-Server-Kind": settings.INNGEST_SERVER_KIND,
        "X-Run-ID": request.run_id,
        "X-Inngest-Signature": signing.signature(endpoint.body, keys[0]) if keys else "",
        "x-inngest-req-version": str(max(request.request_version, 0)),
        "traceparent": request.traceparent,
    }
    if request.step_target != "step":
        headers["X-Inngest-Step-ID"] = request.step_target
    if request.disable_immediate_execution:
        headers["X-Inngest-Force-Step-Plan"] = "true"
    return _read_answer(_post(endpoint.url, endpoint.body or None, headers, method=endpoint.method), keys)


def _read_answer(answer: app_http.Answer | str, keys: list[str]) -> SdkResponse:
    if isinstance(answer, str):
        return SdkResponse(status=None, transport_error=answer)
    content = answer.body
    answer_signature = answer.headers.get("X-Inngest-Signature")
    if keys and answer_signature and not signing.is_valid_signature(content, answer_signature, keys):
        # A signed answer that does not verify did not come from the app (or was altered).
        # It is an answer, though: recorded as one that cannot be used, not as an unreachable app.
        return SdkResponse(status=answer.status, answer_error="signature_mismatch: the answer is not signed with the signing key")
    return read_response(answer.status, answer.headers, content)


def _post(url: str, payload: bytes | None, headers: dict[str, str], method: str = "POST") -> app_http.Answer | str:
    """The answer with its whole body, or why there is none, within INNGEST_CALL_TIMEOUT_SECONDS
    from the first byte sent to the last byte read. Inngest follows redirects (re-sending the
    body, executor/app_http.py); nothing else is retried here, because a retry is the decision's
    business and is recorded as an attempt."""
    seconds = settings.INNGEST_CALL_TIMEOUT_SECONDS
    try:
        return app_http.exchange(method, url, payload, headers, seconds, MAX_RESPONSE_BYTES)
    except app_http.DeadlinePassed:
        return f"timeout: the app did not answer in full within {seconds:g} s"
    except app_http.AnswerTooLarge:
        return f"output_too_large: the SDK answered more than {MAX_RESPONSE_BYTES} bytes"
    except app_http.ExchangeError as exc:
        return str(exc)


def _encode(body: dict[str, Any], keys: list[str], parts: RunParts) -> bytes:
    """The body as sent. Signed bodies are JCS-canonical (RFC 8785), which is what SDKs verify;
    they are joined from the run's parts canonicalized once (executor/canonical_body.py) where
    they can be."""
    if keys:
        try:
            return canonical_body(body, parts)
        except Unjoinable:
            pass
        try:
            return rfc8785.dumps(body)
        except (rfc8785.CanonicalizationError, UnicodeEncodeError):
            # Integers beyond ±2^53, NaN and lone surrogates (a step's output, stored as the
            # SDK sent it) have no JCS form; sorted keys are the closest we can sign. A lone
            # surrogate has no UTF-8 form either: then the text is sent with ASCII escapes.
            # (rfc8785 sorts keys as UTF-16: a lone surrogate in a key raises UnicodeEncodeError.)
            text = json.dumps(body, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
            try:
                return text.encode()
            except UnicodeEncodeError:
                return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    return json.dumps(body, separators=(",", ":")).encode()


class AnswerError(ValueError):
    """The app answered, but not with anything this server can use."""


def read_response(status: int, headers: Any, content: bytes) -> SdkResponse:
    try:
        body = _decode(content)
        if status == 201 and isinstance(body, dict) and "status" in body:
            return _unwrap_stream(body, headers, len(content))
    except AnswerError as exc:
        return SdkResponse(status=status, has_sdk_header=bool(headers.get("X-Inngest-SDK")), answer_error=str(exc))
    return SdkResponse(
        status=status,
        body=body,
        has_sdk_header=bool(headers.get("X-Inngest-SDK")),
        is_no_retry=(headers.get("X-Inngest-No-Retry") or "").lower() == "true",
        retry_after=headers.get("Retry-After"),
        request_version=_request_version(headers.get("X-Inngest-Req-Version")),
        body_bytes=len(content),
    )


def _unwrap_stream(envelope: dict, outer_headers: Any, size: int) -> SdkResponse:
    """A 201 streaming answer carries the real status, headers and body inside (§4.1)."""
    status, inner_headers = envelope["status"], envelope.get("headers") or {}
    if type(status) is not int or not 100 <= status <= 599:
        raise AnswerError(f"the streamed answer's status is not an HTTP status code: {json.dumps(status)[:40]}")
    if not isinstance(inner_headers, dict):
        raise AnswerError("the streamed answer's headers are not a JSON object")
    inner = {str(k).lower(): v for k, v in inner_headers.items()}
    merged = {k.lower(): v for k, v in outer_headers.items()} | inner
    body = envelope.get("body")
    if isinstance(body, str):
        body = _decode(body)
    return SdkResponse(
        status=status,
        body=body,
        has_sdk_header=bool(merged.get("x-inngest-sdk")),
        is_no_retry=str(merged.get("x-inngest-no-retry", "")).lower() == "true",
        retry_after=str(merged["retry-after"]) if merged.get("retry-after") is not None else None,
        request_version=_request_version(merged.get("x-inngest-req-version")),
        body_bytes=size,
    )


def _decode(content: bytes | str) -> Any:
    """The JSON value of a body, or its text when it is not JSON."""
    if not content:
        return None
    try:
        value = json.loads(content)
    except RecursionError:
        raise AnswerError(f"the answer is JSON nested more than {MAX_DEPTH} levels deep") from None
    except ValueError:
        return content.decode("utf-8", errors="replace") if isinstance(content, bytes) else content
    if is_nested_deeper(content, value):
        # Step outputs reach recursive code (expressions over function.finished, the UI), as events do.
        raise AnswerError(f"the answer is JSON nested more than {MAX_DEPTH} levels deep")
    return value


def _request_version(value: Any) -> int | None:
    try:
        version = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return version if 0 <= version <= MAX_REQUEST_VERSION else None
