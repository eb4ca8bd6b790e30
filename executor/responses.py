"""The SDK's answer to a call, reduced to what the decision needs (protocol.md §4.1)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SdkResponse:
    status: int | None  # None: no HTTP answer at all (connection refused, timeout, …)
    body: Any = None  # parsed JSON, or the raw text when the body was not JSON
    has_sdk_header: bool = False
    is_no_retry: bool = False
    retry_after: str | None = None
    request_version: int | None = None
    transport_error: str | None = None


@dataclass(frozen=True)
class CallView:
    """What the decision needs to know about the call that was just made."""

    step_target: str
    attempt: int
    max_attempts: int
    is_immediate_execution_disabled: bool = False

    @property
    def has_attempts_left(self) -> bool:
        return self.attempt + 1 < self.max_attempts
