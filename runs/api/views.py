"""`GET /v1/runs/{id}` and `DELETE /v1/runs/{id}` (cancel)."""
from __future__ import annotations

from django.http import HttpResponse
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from events.api.envelope import v1_error, v1_response
from runs import lifecycle
from runs.api.serializers import run_json
from runs.models import Run


class RunDetailView(APIView):
    def get(self, request: Request, run_id: str) -> Response:
        run = Run.objects.select_related("function", "event").filter(id=run_id).first()
        if run is None:
            return v1_error("run not found", 404)
        return v1_response(run_json(run))

    def delete(self, request: Request, run_id: str) -> HttpResponse:
        run = Run.objects.filter(id=run_id).first()
        if run is None:
            return v1_error("run not found", 404)
        lifecycle.cancel_run(run)
        return HttpResponse(status=200)
