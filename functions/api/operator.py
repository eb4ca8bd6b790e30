"""Operator REST API for functions: `GET /api/v1/functions`, `POST /api/v1/functions` (register an
app's functions by URL, without an SDK sync: the server will call that URL as it calls SDK apps)."""
from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from core.operator_access import OPERATOR_ERRORS, OperatorAPIView
from functions.models import Function
from functions.sync import RegisterError, register_app


class TriggerSerializer(serializers.Serializer):
    event = serializers.CharField(source="event_name", allow_blank=True)
    expression = serializers.CharField(allow_blank=True)
    cron = serializers.CharField(allow_blank=True)


class FunctionSerializer(serializers.ModelSerializer):
    app = serializers.CharField(source="app.name")
    triggers = TriggerSerializer(many=True)

    class Meta:
        model = Function
        fields = ["id", "slug", "name", "app", "url", "retries", "version", "is_archived", "triggers", "config", "updated_at"]


class FunctionListSerializer(serializers.Serializer):
    data = FunctionSerializer(many=True)


class RegisterFunctionsSerializer(serializers.Serializer):
    app = serializers.CharField(max_length=255, help_text="The app's name (an SDK's app id)")
    url = serializers.URLField(help_text="Where the server calls the functions (an SDK serve endpoint)")
    functions = serializers.ListField(child=serializers.DictField(), allow_empty=False,
                                      help_text="Function configs as SDKs register them (id, name, triggers, flow control...)")


class FunctionsView(OperatorAPIView):

    @extend_schema(responses={200: FunctionListSerializer, **OPERATOR_ERRORS}, summary="List active functions")
    def get(self, request: Request) -> Response:
        rows = Function.objects.select_related("app").prefetch_related("triggers").filter(is_archived=False).order_by("slug")
        return Response({"data": FunctionSerializer(rows, many=True).data})

    @extend_schema(request=RegisterFunctionsSerializer, responses={
        201: FunctionListSerializer,
        400: OpenApiResponse(OpenApiTypes.OBJECT, description="The fields' errors (`{field: [messages]}`), an invalid "
                             "function (`{error, status, data}`) or an unreadable body (`{detail}`)"),
        **OPERATOR_ERRORS,
    }, summary="Register an app's functions by URL (replaces the app's previous functions)")
    def post(self, request: Request) -> Response:
        given = RegisterFunctionsSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        url = given.validated_data["url"]
        functions = [_with_step(dict(f), url) for f in given.validated_data["functions"]]
        try:
            result = register_app({"url": url, "appName": given.validated_data["app"], "functions": functions,
                                   "sdk": "api:v1", "framework": "rest-api", "v": "0.1"})
        except RegisterError as exc:
            return Response({"error": str(exc), "status": 400, "data": exc.data}, status=400)
        rows = Function.objects.select_related("app").prefetch_related("triggers").filter(app=result.app, is_archived=False)
        return Response({"data": FunctionSerializer(rows.order_by("slug"), many=True).data}, status=201)


def _with_step(function: dict, url: str) -> dict:
    """A config without `steps` gets the one step SDKs declare, pointing at the app's URL."""
    if not function.get("steps"):
        slug = str(function.get("id") or "")
        separator = "&" if "?" in url else "?"
        function["steps"] = {"step": {"id": "step", "name": "step",
                                      "runtime": {"type": "http", "url": f"{url}{separator}fnId={slug}&stepId=step"}}}
    return function
