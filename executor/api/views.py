"""`GET /metrics`: the server's counters and gauges in Prometheus' text format."""
from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry

from executor.metrics import ServerCollector

_registry = CollectorRegistry(auto_describe=False)
_registry.register(ServerCollector())


def metrics_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse(generate_latest(_registry), content_type=CONTENT_TYPE_LATEST)
