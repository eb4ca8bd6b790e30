"""Who may use the UI and the operator API: everyone in dev mode, signed-in users (or API tokens)
in production (Django auth)."""
from __future__ import annotations

from functools import wraps
from typing import Any, Callable

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.permissions import BasePermission
from rest_framework.views import APIView

from core.json_body import read_json_body


def operator_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def guarded(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if settings.INNGEST_OPERATOR_LOGIN and not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)

    return guarded


class OperatorAccess(BasePermission):
    """The operator REST API (/api/v1): a signed-in user or a token in production, open in dev."""

    message = "Authentication required: send 'Authorization: Token <token>' (manage.py drf_create_token <user>)"

    def has_permission(self, request, view) -> bool:
        return not settings.INNGEST_OPERATOR_LOGIN or bool(request.user and request.user.is_authenticated)


class OperatorJSONParser(JSONParser):
    """JSON read as /e/{key} and /fn/register read it (core/json_body.py): DRF's own parser lets
    through what PostgreSQL cannot store, and nesting deep enough to overflow the stack."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        try:
            return read_json_body(stream.read())
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None


class OperatorAPIView(APIView):
    """Base of the operator API's views. SDK-facing views keep DRF's authentication off (it is
    per request work they do not need); these turn on sessions (the UI's login) and tokens."""

    authentication_classes = [TokenAuthentication, SessionAuthentication]  # token first: 401, not 403
    permission_classes = [OperatorAccess]
    parser_classes = [OperatorJSONParser]


class DetailSerializer(serializers.Serializer):
    """DRF's own error answer: no valid token, a body that is not JSON, a media type it does not read."""

    detail = serializers.CharField()


# For the OpenAPI schema: what any operator API operation may answer besides its own responses.
OPERATOR_ERRORS = {401: OpenApiResponse(DetailSerializer, description="No valid token or session (production)")}


class ErrorSerializer(serializers.Serializer):
    """The server's own error answer (protocol.md): `{status, error}`."""

    status = serializers.IntegerField()
    error = serializers.CharField()


# For operations that take path or query parameters: inngest_project.middleware.RefuseNulMiddleware.
URL_ERRORS = {400: OpenApiResponse(ErrorSerializer, description="A parameter contains a NUL character")}
