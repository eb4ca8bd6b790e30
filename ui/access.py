"""Who may use the UI and the operator API: everyone in dev mode, signed-in users (or API tokens)
in production (Django auth)."""
from __future__ import annotations

from functools import wraps
from typing import Callable

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.views import APIView


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


class OperatorAPIView(APIView):
    """Base of the operator API's views. SDK-facing views keep DRF's authentication off (it is
    per request work they do not need); these turn on sessions (the UI's login) and tokens."""

    authentication_classes = [TokenAuthentication, SessionAuthentication]  # token first: 401, not 403
    permission_classes = [OperatorAccess]
