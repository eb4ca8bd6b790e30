"""A run's trace ids, OpenTelemetry-shaped: the trace API shows them (runs/api/gql/trace.py) and
each call to the app carries them as a W3C `traceparent` header (executor/transport.py).

They are derived from the run's and the step's ids, so the same run always has the same trace,
whoever computes it. The JS SDK (v4) attributes its AI spans to a step, as `inngest.ai` step
metadata, only in a call that carries a `traceparent`.
"""
from __future__ import annotations

import hashlib


def trace_id(run_id: str) -> str:
    """32 hex digits, as an OpenTelemetry trace id."""
    return hashlib.sha256(f"trace:{run_id}".encode()).hexdigest()[:32]


def span_id(run_id: str, key: str) -> str:
    """16 hex digits, as an OpenTelemetry span id: the run's root span for key "", a step's for its id."""
    return hashlib.sha256(f"span:{run_id}:{key}".encode()).hexdigest()[:16]


def traceparent(run_id: str, call_id: str) -> str:
    """The header for one call to the app: its own span (keyed by the call's id) in the run's trace, sampled."""
    return f"00-{trace_id(run_id)}-{span_id(run_id, f'call:{call_id}')}-01"
