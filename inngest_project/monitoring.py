"""`GET /health` for probes, `GET /metrics`: the server's counters and gauges in Prometheus' text format."""
from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from inngest_project.prometheus import ServerCollector
from inngest_project.security import insecure_warning

_registry = CollectorRegistry(auto_describe=False)
_registry.register(ServerCollector())


def metrics_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse(generate_latest(_registry), content_type=CONTENT_TYPE_LATEST)


class HealthView(APIView):
    def get(self, request: Request) -> Response:
        body: dict = {"status": 200, "message": "OK"}
        # Still healthy, but whoever looks should see that it runs open (INNGEST_INSECURE).
        if warning := insecure_warning():
            body.update(insecure=True, warning=warning)
        return Response(body)
