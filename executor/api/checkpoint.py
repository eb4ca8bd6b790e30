"""`POST /v1/checkpoint/{runId}/async`: steps an SDK ran inside a call (executor/checkpoints.py)."""
from __future__ import annotations

import logging

from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from events.api.envelope import v1_error
from events.json_body import read_json_body
from executor import checkpoints, metrics

log = logging.getLogger(__name__)


class AsyncCheckpointView(APIView):
    parser_classes: list = []

    def post(self, request: Request, run_id: str) -> Response:
        raw = request._request.body
        try:
            checkpoint = checkpoints.read_async_checkpoint(run_id, read_json_body(raw or b"null"), len(raw))
            stored = checkpoints.store_async_checkpoint(checkpoint)
        except ValueError as exc:
            return v1_error(f"invalid request body: {exc}", 400)
        except checkpoints.CheckpointRefused as exc:
            log.info("run %s: checkpoint refused (%s): %s", run_id, exc.status, exc.message)
            metrics.count("inngest_checkpoints", str(exc.status))
            return v1_error(exc.message, exc.status)
        metrics.count("inngest_checkpoints", "stored")
        return Response({"data": {"stored": stored}})
