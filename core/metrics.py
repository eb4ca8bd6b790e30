"""What the server counts, for Prometheus at `GET /metrics` (rendered by inngest_project/prometheus.py).

Counters are kept in Redis, not in each process: HTTP and worker processes on many machines add
to the same numbers, and one scrape of any server process sees them all (prometheus_client's
per-process registries would need one scrape target per worker process). Each process buffers
its increments and a daemon thread writes them in one pipelined call every second, so requests
and tasks never wait on Redis for a metric.
"""
from __future__ import annotations

import json
import logging
import os
import threading
from collections import defaultdict
from functools import lru_cache
from typing import Any

from core.redis_client import new_redis_client

log = logging.getLogger(__name__)

KEY = "inngest:fc:metrics"  # under flow control's prefix (runs/flow_control/counters.py), where it always was
CALL_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

# name → (help, label names)
COUNTERS = {
    "inngest_events_received": ("Events accepted at /e/", ()),
    "inngest_runs_started": ("Runs that made their first call", ("function",)),
    "inngest_runs_ended": ("Runs that ended, by final status", ("function", "status")),
    "inngest_step_calls": ("Calls made to SDK apps, by the opcode or error they answered with", ("function", "outcome")),
    "inngest_step_retries": ("Calls scheduled again after an error", ("function",)),
    "inngest_checkpoints": ("Async checkpoints SDKs reported during calls, by outcome (stored, or the HTTP status refusing it)", ("outcome",)),
    "inngest_timer_errors": ("Failures in the timer tick, by its part (one part's or one row's failure skips only that)", ("part",)),
}

FLUSH_SECONDS = 1.0

_lock = threading.Lock()
_pending: dict[str, float] = defaultdict(float)
_flusher_pid = 0
_client: Any = None


@lru_cache(maxsize=4096)  # a few names × functions × outcomes; counted on every call
def _field(name: str, labels: tuple[str, ...]) -> str:
    return f"{name}|{json.dumps(labels)}"


def count(name: str, *labels: str, amount: float = 1) -> None:
    with _lock:
        _pending[_field(name, labels)] += amount
    _ensure_flusher()


def observe_call(function: str, seconds: float) -> None:
    """One SDK call's latency, into the histogram's buckets (non-cumulative; summed at scrape)."""
    bucket = next((str(b) for b in CALL_SECONDS_BUCKETS if seconds <= b), "+Inf")
    with _lock:
        _pending[_field("inngest_step_call_seconds_bucket", (function, bucket))] += 1
        _pending[_field("inngest_step_call_seconds_sum", (function,))] += seconds
    _ensure_flusher()


def _ensure_flusher() -> None:
    """One flushing thread per process (a forked worker child starts its own)."""
    global _flusher_pid
    if _flusher_pid == os.getpid():
        return
    with _lock:
        if _flusher_pid == os.getpid():
            return
        _flusher_pid = os.getpid()
    threading.Thread(target=_flush_forever, name="metrics-flush", daemon=True).start()


def _flush_forever() -> None:
    stop = threading.Event()
    while not stop.wait(FLUSH_SECONDS):
        flush()


def flush() -> None:
    """Write this process's buffered increments."""
    with _lock:
        if not _pending:
            return
        batch = dict(_pending)
        _pending.clear()
    try:
        pipe = _redis().pipeline(transaction=False)
        for field, amount in batch.items():
            pipe.hincrbyfloat(KEY, field, amount)
        pipe.execute()
    except Exception:  # noqa: BLE001 - losing a few increments beats failing the request or task
        log.warning("could not write %d metric increments", len(batch), exc_info=True)


def read_all() -> dict[str, dict[tuple, float]]:
    values: dict[str, dict[tuple, float]] = defaultdict(dict)
    for field, value in _redis().hgetall(KEY).items():
        field, value = _text(field), _text(value)
        name, _, labels = field.partition("|")
        values[name][tuple(json.loads(labels))] = float(value)
    return values


def _redis() -> Any:
    global _client
    if _client is None:
        with _lock:
            if _client is None:
                _client = new_redis_client()
    return _client


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
