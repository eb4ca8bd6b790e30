"""Operator REST API for events: `POST /api/v1/events` (the same as /e/{key}, with API auth)."""
from __future__ import annotations

import json

from drf_spectacular.utils import OpenApiExample, PolymorphicProxySerializer, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from core.operator_access import OPERATOR_ERRORS, DetailSerializer, OperatorAPIView
from runs.intake import EventError, ingest


class EventInSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=255)
    data = serializers.DictField(required=False)
    user = serializers.DictField(required=False)
    id = serializers.CharField(required=False, help_text="Idempotency id: one run per function per id for 24 h")
    ts = serializers.IntegerField(required=False, help_text="Unix milliseconds")


class EventIdsSerializer(serializers.Serializer):
    ids = serializers.ListField(child=serializers.CharField())
    status = serializers.IntegerField()
    error = serializers.CharField(required=False)


class EventsView(OperatorAPIView):

    @extend_schema(request=EventInSerializer(many=True), responses={
        200: EventIdsSerializer,
        # A refused event answers as /e/{key} does; a body that is not JSON gets DRF's answer.
        400: PolymorphicProxySerializer("EventsRefused", serializers=[EventIdsSerializer, DetailSerializer],
                                        resource_type_field_name=None),
        **OPERATOR_ERRORS,
    },
                   summary="Send one event or a list of events",
                   examples=[OpenApiExample("one event", value={"name": "app/user.created", "data": {"id": 1}}, request_only=True)])
    def post(self, request: Request) -> Response:
        try:
            result = ingest(json.dumps(request.data).encode())
        except EventError as exc:
            return Response({"ids": [], "status": 400, "error": str(exc)}, status=400)
        if result.error:
            return Response({"ids": result.ids, "status": 400, "error": result.error}, status=400)
        return Response({"ids": result.ids, "status": 200})
