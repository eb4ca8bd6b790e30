"""What the server counts, for Prometheus at `GET /metrics`.

Counters are kept in Redis, not in each process: HTTP and worker processes on many machines add
to the same numbers, and one scrape of any server process sees them all (prometheus_client's
per-process registries would need one scrape target per worker process). Each process buffers
its increments and a daemon thread writes them in one pipelined call every second, so requests
and tasks never wait on Redis for a metric.
Gauges that describe current state (queue depth, open sleeps and waits) are read from the
database at scrape time.
"""
from __future__ import annotations

import json
import logging
import os
import threading
from collections import defaultdict
from typing import Iterator

from django.db.models import Count, Q
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from executor.counters import PREFIX, counters
from functions.models import ExpressionFailure

log = logging.getLogger(__name__)

KEY = f"{PREFIX}metrics"
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
        counters().add_to_hash(KEY, batch)
    except Exception:  # noqa: BLE001 - losing a few increments beats failing the request or task
        log.warning("could not write %d metric increments", len(batch), exc_info=True)


class ServerCollector(Collector):
    """Renders the Redis counters and the database gauges for prometheus_client."""

    def collect(self) -> Iterator:
        flush()
        values = _read_all()
        for name, (help_text, label_names) in COUNTERS.items():
            family = CounterMetricFamily(name, help_text, labels=label_names)
            for labels, value in values.get(name, {}).items():
                family.add_metric(list(labels), value)
            yield family
        yield _histogram(values)
        yield from _state_gauges()
        yield _expression_failures()


def _read_all() -> dict[str, dict[tuple, float]]:
    values: dict[str, dict[tuple, float]] = defaultdict(dict)
    for field, value in counters().read_hash(KEY).items():
        name, _, labels = field.partition("|")
        values[name][tuple(json.loads(labels))] = float(value)
    return values


def _histogram(values: dict[str, dict[tuple, float]]) -> HistogramMetricFamily:
    family = HistogramMetricFamily("inngest_step_call_seconds", "Latency of calls to SDK apps", labels=["function"])
    buckets = values.get("inngest_step_call_seconds_bucket", {})
    sums = values.get("inngest_step_call_seconds_sum", {})
    for function in sorted({labels[0] for labels in buckets}):
        running, cumulative = 0.0, []
        for bound in [*map(str, CALL_SECONDS_BUCKETS), "+Inf"]:
            running += buckets.get((function, bound), 0.0)
            cumulative.append((bound, running))
        family.add_metric([function], cumulative, sums.get((function,), 0.0))
    return family


def _state_gauges() -> Iterator[GaugeMetricFamily]:
    from runs.models import PendingCall, Wait

    now = timezone.now()
    calls = PendingCall.objects.aggregate(
        due=Count("id", filter=Q(due_at__lte=now, lease_owner="", parked_on="")),
        running=Count("id", filter=~Q(lease_owner="")),
        parked=Count("id", filter=~Q(parked_on="")),
        later=Count("id", filter=Q(due_at__gt=now, lease_owner="", parked_on="")),
    )
    queue = GaugeMetricFamily("inngest_queue_depth", "Calls waiting to be made, by state", labels=["state"])
    for state, value in calls.items():
        queue.add_metric([state], value)
    yield queue
    waits = GaugeMetricFamily("inngest_open_waits", "Open sleeps, waits for events, invokes, cancel conditions and timeouts",
                              labels=["kind"])
    for kind, value in Wait.objects.values_list("kind").annotate(n=Count("id")).values_list("kind", "n"):
        waits.add_metric([kind], value)
    yield waits


def _expression_failures() -> CounterMetricFamily:
    """Evaluation failures of functions' expressions, as counted on their rows (a re-sync that
    changes a function's config removes its rows: a counter reset to Prometheus)."""
    family = CounterMetricFamily("inngest_expression_errors", "Expressions that could not be evaluated (no match)",
                                 labels=["function", "field"])
    for slug, field, count in ExpressionFailure.objects.values_list("function__slug", "field", "count"):
        family.add_metric([slug, field], count)
    return family
