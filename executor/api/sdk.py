"""What the SDKs call for checkpoints: `POST /v1/checkpoint/{runId}/async` (steps an SDK ran inside a
call, executor/checkpoints.py) and Durable Endpoints (executor/endpoints.py): `POST /v1/checkpoint`,
`POST /v1/checkpoint/{runId}/steps`, `GET /v1/http/runs/{runId}/output?token=`."""
from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpResponse
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core import metrics
from core.json_body import read_json_body
from events.api.envelope import v1_error, v1_error_body
from executor import checkpoints, endpoints

log = logging.getLogger(__name__)


class AsyncCheckpointView(APIView):
    parser_classes: list = []

    def post(self, request: Request, run_id: str) -> Response:
        status, payload = answer_async_checkpoint(run_id, request._request.body)
        return Response(payload, status=status)


def answer_async_checkpoint(run_id: str, raw: bytes) -> tuple[int, dict]:
    """`POST /v1/checkpoint/{runId}/async`'s status and JSON answer. Also served without Django's
    request cycle (inngest_project/checkpoint_route.py): the one copy of what it answers."""
    try:
        checkpoint = checkpoints.read_async_checkpoint(run_id, read_json_body(raw or b"null"), len(raw))
        stored = checkpoints.store_async_checkpoint(checkpoint)
    except ValueError as exc:
        return 400, v1_error_body(f"invalid request body: {exc}", 400)
    except checkpoints.CheckpointRefused as exc:
        log.info("run %s: checkpoint refused (%s): %s", run_id, exc.status, exc.message)
        metrics.count("inngest_checkpoints", str(exc.status))
        return exc.status, v1_error_body(exc.message, exc.status)
    metrics.count("inngest_checkpoints", "stored")
    return 200, {"data": {"stored": stored}}


class NewEndpointRunView(APIView):
    parser_classes: list = []

    def post(self, request: Request) -> Response:
        raw = request._request.body
        try:
            new = endpoints.read_new_run(read_json_body(raw or b"null"))
            return Response({"data": endpoints.checkpoint_new_run(new, len(raw))})
        except ValueError as exc:
            return v1_error(f"invalid request body: {exc}", 400)
        except endpoints.EndpointError as exc:
            return v1_error(exc.message, exc.status)


class EndpointStepsView(APIView):
    parser_classes: list = []

    def post(self, request: Request, run_id: str) -> Response:
        raw = request._request.body
        try:
            body = read_json_body(raw or b"null")
            if not isinstance(body, dict) or body.get("run_id") not in (None, run_id):
                return v1_error("the body must be a JSON object whose run_id is the URL's", 400)
            endpoints.checkpoint_steps(run_id, body.get("steps"), len(raw))
        except ValueError as exc:
            return v1_error(f"invalid request body: {exc}", 400)
        except endpoints.EndpointError as exc:
            return v1_error(exc.message, exc.status)
        return Response({"data": {}})


class EndpointOutputView(APIView):
    """Authorised by the run's token (the redirect the SDK sent its client), not the signing key."""

    def get(self, request: Request, run_id: str) -> HttpResponse:
        if endpoints.run_id_of_token(request.query_params.get("token", "")) != run_id:
            return v1_error("Unable to find run with auth token", 401)
        output = endpoints.wait_for_output(run_id, settings.INNGEST_ENDPOINT_OUTPUT_WAIT_SECONDS)
        if output is None:
            return v1_error("run not found", 404)
        return HttpResponse(output.body, status=200, content_type=output.content_type)
