"""`POST /fn/register` (SDK sync) and `GET /dev`."""
from __future__ import annotations

from django.conf import settings
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.json_body import read_json_body
from functions.models import Function
from functions.sync import RegisterError, register_app


class RegisterView(APIView):
    parser_classes: list = []

    def post(self, request: Request) -> Response:
        try:
            body = read_json_body(request._request.body or b"null")
        except ValueError as exc:
            return Response({"error": f"Invalid request: {exc}"}, status=400)
        try:
            result = register_app(body, request.headers.get("X-Inngest-Expected-Server-Kind"))
        except RegisterError as exc:
            if exc.data is not None:
                return Response({"error": str(exc), "status": 400, "data": exc.data}, status=400)
            return Response({"error": str(exc)}, status=400)
        return Response({"ok": True, "modified": result.is_modified, "app_id": str(result.app.id), "sync_id": None})


class DevInfoView(APIView):
    def get(self, request: Request) -> Response:
        if settings.INNGEST_SERVER_KIND != "dev":
            return Response({"error": "not found", "status": 404}, status=404)
        functions = Function.objects.filter(is_archived=False).select_related("app")
        return Response({
            "version": "inngest-django",
            "authed": False,
            "startOpts": {"dir": None, "urls": getattr(settings, "INNGEST_DEV_URLS", []), "autodiscover": False,
                          "poll": True, "poll_interval": settings.INNGEST_SYNC_POLL_SECONDS},
            "functions": [{"id": str(f.id), "slug": f.slug, "name": f.name, "app": f.app.name, "config": f.config} for f in functions],
            "handlers": [],
            "isSingleNodeService": True,
            "isMissingSigningKey": not settings.INNGEST_SIGNING_KEY,
            "isMissingEventKeys": True,
            "features": {},
        })

