"""The SDK's answer to a call, reduced to what the decision needs (protocol.md §4.1)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Collection, Mapping


@dataclass(frozen=True)
class GatewayResult:
    """The outcome of a request the server made for a Gateway or AIGateway op."""

    data: Any = None  # what the step's memo holds under "data"
    error: dict | None = None  # {name, message}: the request failed
    is_retriable: bool = True


@dataclass(frozen=True)
class SdkResponse:
    status: int | None  # None: no HTTP answer at all (connection refused, timeout, …)
    body: Any = None  # parsed JSON, or the raw text when the body was not JSON
    has_sdk_header: bool = False
    is_no_retry: bool = False
    retry_after: str | None = None
    request_version: int | None = None
    transport_error: str | None = None
    # An HTTP answer that cannot be used (JSON nested too deep, a malformed streamed envelope).
    answer_error: str | None = None
    body_bytes: int = 0  # the answer's size (and the gateway answers'): no step output or state in it can be larger
    gateway_results: Mapping[str, GatewayResult] = field(default_factory=dict)  # by op id


@dataclass(frozen=True)
class Limits:
    """Inngest's limits on a run (protocol.md §4.6), configurable by settings."""

    max_step_output_bytes: int = 4 * 1024 * 1024
    max_state_bytes: int = 32 * 1024 * 1024  # events + step outputs + result
    max_steps: int = 1000
    max_ops_per_response: int = 1000
    # An app that answers without ever finishing a step (empty 206s) would be called forever.
    max_calls_without_progress: int = 100


@dataclass(frozen=True)
class CallView:
    """What the decision needs to know about the call that was just made, and its run."""

    step_target: str
    attempt: int
    max_attempts: int
    is_immediate_execution_disabled: bool = False
    steps_recorded: int = 0
    memoized: Collection[str] = ()  # the ids of the steps recorded so far
    state_bytes: int = 0  # the length of the run's events and step outputs as stored
    calls_without_progress: int = 0  # calls in a row before this one that finished nothing
    limits: Limits = Limits()

    @property
    def has_attempts_left(self) -> bool:
        return self.attempt + 1 < self.max_attempts
