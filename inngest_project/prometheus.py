"""The server's metrics as Prometheus reads them: the counters kept in Redis (core/metrics.py) and
gauges that describe current state (queue depth, open sleeps and waits, expression failures),
read from the database at scrape time."""
from __future__ import annotations

from typing import Iterator

from django.db.models import Count
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from core.metrics import CALL_SECONDS_BUCKETS, COUNTERS, flush, read_all
from functions.models import ExpressionFailure
from runs import pending_calls
from runs.models import Wait


class ServerCollector(Collector):
    """Renders the Redis counters and the database gauges for prometheus_client."""

    def collect(self) -> Iterator:
        flush()
        values = read_all()
        for name, (help_text, label_names) in COUNTERS.items():
            family = CounterMetricFamily(name, help_text, labels=label_names)
            for labels, value in values.get(name, {}).items():
                family.add_metric(list(labels), value)
            yield family
        yield _histogram(values)
        yield from _state_gauges()
        yield _expression_failures()


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
    now = timezone.now()
    calls = pending_calls.queue_depth(now)
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
