"""Calling a function over HTTP: the request body (§3.4), headers (§3.2) and the answer (§4.1)."""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import requests
from django.conf import settings

from executor.responses import SdkResponse

MAX_RESPONSE_BYTES = 8 * 1024 * 1024
_local = threading.local()


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

    def body(self) -> dict[str, Any]:
        ctx = {
            "fn_id": self.fn_id,
            "run_id": self.run_id,
            "env": "",
            "step_id": "step",
            "attempt": self.attempt,
            "max_attempts": self.max_attempts,
            "stack": {"stack": self.stack, "current": len(self.stack)},
            "disable_immediate_execution": self.disable_immediate_execution,
            "use_api": False,
        }
        return {
            "event": self.event,
            "events": self.events,
            "steps": self.steps,
            "ctx": ctx,
            "version": self.request_version,
            "use_api": False,
        }


def with_step_id(url: str, step_target: str) -> str:
    """The registered URL with `stepId` set; every other byte of it is kept as registered."""
    parts = urlsplit(url)
    pairs = [p for p in parts.query.split("&") if p and not p.startswith("stepId=")]
    pairs.append("stepId=" + quote(step_target, safe=""))
    return urlunsplit(parts._replace(query="&".join(pairs)))


def _session() -> requests.Session:
    # One keep-alive session per worker thread: no per-call connection setup on loopback.
    session = getattr(_local, "session", None)
    if session is None:
        session = requests.Session()
        _local.session = session
    return session


def call_function(request: CallRequest) -> SdkResponse:
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Inngest",
        "X-Inngest-Server-Kind": settings.INNGEST_SERVER_KIND,
        "X-Inngest-Step-ID": request.step_target,
        "X-Run-ID": request.run_id,
        "x-inngest-req-version": str(request.request_version),
    }
    payload = json.dumps(request.body(), separators=(",", ":")).encode()
    try:
        answer = _session().post(
            with_step_id(request.url, request.step_target),
            data=payload,
            headers=headers,
            timeout=(10, settings.INNGEST_CALL_TIMEOUT_SECONDS),
        )
    except requests.RequestException as exc:
        _local.session = None  # a broken connection must not poison the next call
        return SdkResponse(status=None, transport_error=f"{type(exc).__name__}: {exc}")
    return read_response(answer.status_code, answer.headers, answer.content)


def read_response(status: int, headers: Any, content: bytes) -> SdkResponse:
    if len(content) > MAX_RESPONSE_BYTES:
        return SdkResponse(status=None, transport_error=f"output_too_large: the SDK answered {len(content)} bytes")
    body = _decode(content)
    if status == 201 and isinstance(body, dict) and "status" in body:
        return _unwrap_stream(body, headers)
    return SdkResponse(
        status=status,
        body=body,
        has_sdk_header=bool(headers.get("X-Inngest-SDK")),
        is_no_retry=(headers.get("X-Inngest-No-Retry") or "").lower() == "true",
        retry_after=headers.get("Retry-After"),
        request_version=_int_or_none(headers.get("X-Inngest-Req-Version")),
    )


def _unwrap_stream(envelope: dict, outer_headers: Any) -> SdkResponse:
    """A 201 streaming answer carries the real status, headers and body inside (§4.1)."""
    inner = {str(k).lower(): v for k, v in (envelope.get("headers") or {}).items()}
    merged = {k.lower(): v for k, v in outer_headers.items()} | inner
    body = envelope.get("body")
    if isinstance(body, str):
        body = _decode(body.encode())
    return SdkResponse(
        status=int(envelope["status"]),
        body=body,
        has_sdk_header=bool(merged.get("x-inngest-sdk")),
        is_no_retry=str(merged.get("x-inngest-no-retry", "")).lower() == "true",
        retry_after=merged.get("retry-after"),
        request_version=_int_or_none(merged.get("x-inngest-req-version")),
    )


def _decode(content: bytes) -> Any:
    if not content:
        return None
    try:
        return json.loads(content)
    except ValueError:
        return content.decode("utf-8", errors="replace")


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
