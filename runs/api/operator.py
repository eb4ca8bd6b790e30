"""Operator REST API for runs: `GET /api/v1/runs` (filters, cursor paging) and
`GET /api/v1/runs/{id}` (the run with its steps and calls)."""
from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from core.operator_access import OPERATOR_ERRORS, URL_ERRORS, ErrorSerializer, OperatorAPIView
from runs.models import Run, Step, StepAttempt
from runs.queries import RunFilter

PAGE = 50


# The JSON columns are JSON text (core/json_text.py): declared, or they would render as strings.
class RunSerializer(serializers.ModelSerializer):
    function = serializers.CharField(source="function.slug")
    output = serializers.JSONField(read_only=True)
    event_id = serializers.CharField(source="event.internal_id", allow_null=True, default=None)
    event_name = serializers.CharField(source="event.name", allow_null=True, default=None)

    class Meta:
        model = Run
        fields = ["id", "function", "status", "event_id", "event_name", "output", "flow_action", "flow_reason",
                  "created_at", "started_at", "ended_at"]


class StepSerializer(serializers.ModelSerializer):
    output = serializers.JSONField(read_only=True)

    class Meta:
        model = Step
        fields = ["position", "step_id", "name", "op", "output", "created_at"]


class AttemptSerializer(serializers.ModelSerializer):
    output = serializers.JSONField(read_only=True)
    error = serializers.JSONField(read_only=True)

    class Meta:
        model = StepAttempt
        fields = ["step_target", "step_id", "step_name", "attempt", "status_code", "opcode", "output", "error",
                  "started_at", "ended_at"]


class RunDetailSerializer(RunSerializer):
    events = serializers.JSONField(read_only=True)
    steps = StepSerializer(many=True)
    attempts = AttemptSerializer(many=True)

    class Meta(RunSerializer.Meta):
        fields = [*RunSerializer.Meta.fields, "events", "steps", "attempts"]


class RunPageSerializer(serializers.Serializer):
    data = RunSerializer(many=True)
    next = serializers.CharField(allow_null=True, help_text="The `before` of the next page; null on the last page")


class RunDetailAnswerSerializer(serializers.Serializer):
    data = RunDetailSerializer()


FILTERS = [
    OpenApiParameter("status", description="queued, running, completed, failed, cancelled or skipped"),
    OpenApiParameter("function", description="function slug"),
    OpenApiParameter("event_name", description="name of the triggering event"),
    OpenApiParameter("since", description="created at or after (ISO 8601, UTC if no offset)"),
    OpenApiParameter("until", description="created before (ISO 8601)"),
    OpenApiParameter("before", description="cursor: the `next` value of the previous page"),
]


class RunsView(OperatorAPIView):

    @extend_schema(parameters=FILTERS, responses={200: RunPageSerializer, **URL_ERRORS, **OPERATOR_ERRORS},
                   operation_id="runs_list",
                   summary="List runs, newest first, 50 per page")
    def get(self, request: Request) -> Response:
        selected = RunFilter.from_query(request.query_params)
        rows = list(selected.apply(Run.objects.select_related("function", "event").order_by("-id"))[:PAGE + 1])
        following = rows[PAGE - 1].id if len(rows) > PAGE else None
        return Response({"data": RunSerializer(rows[:PAGE], many=True).data, "next": following})


class RunView(OperatorAPIView):

    @extend_schema(responses={200: RunDetailAnswerSerializer, 404: ErrorSerializer, **URL_ERRORS, **OPERATOR_ERRORS},
                   summary="A run with its memoized steps and every call made")
    def get(self, request: Request, run_id: str) -> Response:
        run = Run.objects.select_related("function", "event").prefetch_related("steps", "attempts").filter(id=run_id).first()
        if run is None:
            return Response({"error": "run not found", "status": 404}, status=404)
        return Response({"data": RunDetailSerializer(run).data})
