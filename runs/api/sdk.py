"""Runs over REST: `GET`/`DELETE /v1/runs/{id}`, `DELETE /v0/runs/{id}`, `/v1/cancellations`."""
from __future__ import annotations

from datetime import datetime
from datetime import timezone as dt_timezone

from django.http import HttpResponse, JsonResponse
from ulid import ULID
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from events.api.envelope import v1_error, v1_response
from functions.models import Function
from runs import lifecycle
from runs.api.serializers import cancellation_json, run_json
from runs.cancellations import CancellationError, cancel_runs
from runs.models import Cancellation, Run, Step


class RunDetailView(APIView):
    def get(self, request: Request, run_id: str) -> Response:
        run = Run.objects.select_related("function", "event").filter(id=run_id).first()
        if run is None:
            return v1_error("run not found", 404)
        return v1_response(run_json(run))

    def delete(self, request: Request, run_id: str) -> HttpResponse:
        return cancel_by_id(run_id, success_status=200)


class LegacyRunCancelView(APIView):
    """`DELETE /v0/runs/{id}`: cancel, answered with 204."""

    def delete(self, request: Request, run_id: str) -> HttpResponse:
        return cancel_by_id(run_id, success_status=204)


def cancel_by_id(run_id: str, success_status: int) -> HttpResponse:
    """Cancel one run; cancelling a run that already ended is a no-op, not an error."""
    run = Run.objects.select_related("function").filter(id=run_id).first()
    if run is None:
        return v1_error("run not found", 404)
    lifecycle.cancel_run(run)
    return HttpResponse(status=success_status)


class RunBatchView(APIView):
    """`GET /v0/runs/{id}/batch`: the run's events, for SDKs called with `use_api` (§1.9)."""

    def get(self, request: Request, run_id: str) -> HttpResponse:
        run_or_error = _runtime_run(run_id)
        if isinstance(run_or_error, HttpResponse):
            return run_or_error
        return JsonResponse(run_or_error.events or [], safe=False)


class RunActionsView(APIView):
    """`GET /v0/runs/{id}/actions`: the run's memoized steps, shaped like a call's `steps` map."""

    def get(self, request: Request, run_id: str) -> HttpResponse:
        run_or_error = _runtime_run(run_id)
        if isinstance(run_or_error, HttpResponse):
            return run_or_error
        return JsonResponse(dict(Step.objects.filter(run=run_or_error).values_list("step_id", "output")))


def _runtime_run(run_id: str) -> Run | HttpResponse:
    try:
        ULID.from_str(run_id)
    except ValueError:
        return JsonResponse({"error": f"invalid run id: {run_id}"}, status=400)
    run = Run.objects.filter(id=run_id).only("id", "events").first()
    if run is None:
        return JsonResponse({"error": f"runtime state is no longer available for runID: {run_id}"}, status=410)
    return run


class CancellationListView(APIView):
    def get(self, request: Request) -> Response:
        rows = Cancellation.objects.select_related("function").order_by("-created_at")[:100]
        return v1_response([cancellation_json(c) for c in rows])

    def post(self, request: Request) -> Response:
        body = request.data if isinstance(request.data, dict) else {}
        missing = [key for key in ("app_id", "function_id", "started_before") if not body.get(key)]
        if missing:
            return v1_error(f"missing fields: {', '.join(missing)}", 400)
        function = Function.objects.filter(slug=body["function_id"]).first()
        if function is None:
            return v1_error(f"function not found: {body['function_id']}", 404)
        try:
            before = _instant(body["started_before"])
            after = _instant(body["started_after"]) if body.get("started_after") else None
            cancellation = cancel_runs(str(body["app_id"]), function, before, after, str(body.get("if") or ""))
        except (ValueError, CancellationError) as exc:
            return v1_error(str(exc), 400)
        return v1_response(cancellation_json(cancellation))


class CancellationDetailView(APIView):
    def delete(self, request: Request, cancellation_id: str) -> Response:
        deleted, _ = Cancellation.objects.filter(id=cancellation_id).delete()
        if not deleted:
            return v1_error("cancellation not found", 404)
        return Response({"data": {"ok": True}})


def _instant(text: object) -> datetime:
    parsed = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt_timezone.utc)
