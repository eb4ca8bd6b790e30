"""Runs over REST: `GET`/`DELETE /v1/runs/{id}`, `DELETE /v0/runs/{id}`, `/v1/cancellations`,
`POST /v1/signals`, `POST /v1/runs/{id}/metadata`."""
from __future__ import annotations

from datetime import datetime
from datetime import timezone as dt_timezone

from django.http import HttpResponse, JsonResponse
from ulid import ULID
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.json_body import read_json_body
from events.api.envelope import v1_error, v1_response
from functions.models import Function
from runs import lifecycle
from runs.api.serializers import cancellation_json, run_json
from runs.cancellations import CancellationError, cancel_runs
from runs.models import Cancellation, Run, Step
from runs.run_metadata import MetadataError, add_run_metadata
from runs.signals import send_signal


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
    lifecycle.cancel_run(run, by="the REST API (DELETE of the run)")
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


class SignalView(APIView):
    """`POST /v1/signals {signal, data}`: resume the run waiting for the signal (JS `sendSignal`)."""

    parser_classes: list = []  # read_json_body: the data is stored as a step's memo

    def post(self, request: Request) -> Response:
        try:
            body = read_json_body(request.body)
        except ValueError as exc:
            return v1_error(f"Invalid signal data: {exc}", 400)
        signal = body.get("signal") if isinstance(body, dict) else None
        if not isinstance(signal, str) or not signal or len(signal) > 255:
            return v1_error("signal must be a string of 1 to 255 characters", 400)
        run_id = send_signal(signal, body.get("data"))
        if run_id is None:
            return v1_error("No signal found", 404)
        return Response({"data": {"run_id": run_id}})


class RunMetadataView(APIView):
    """`POST /v1/runs/{id}/metadata {target, metadata: [{kind, op, values}]}` (JS `metadata.set()`
    outside a step, scoring): kept on the run or on the step the target names."""

    parser_classes: list = []

    def post(self, request: Request, run_id: str) -> Response:
        try:
            body = read_json_body(request.body)
        except ValueError as exc:
            return v1_error(f"Invalid metadata target: {exc}", 400)
        run = Run.objects.filter(id=run_id).only("id").first()
        if run is None:
            return v1_error(f"run not found: {run_id}", 404)
        try:
            add_run_metadata(run.id, body)
        except MetadataError as exc:
            return v1_error(str(exc), exc.status)
        return Response(status=200)
