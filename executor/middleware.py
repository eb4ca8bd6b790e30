"""Every answer of the server carries X-Inngest-Server-Kind (protocol.md §1.1), and CORS is open;
a URL with a NUL character is refused before any view sees it; signing-key auth."""
from __future__ import annotations

from typing import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from executor import signing


class ServerKindMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response["X-Inngest-Server-Kind"] = settings.INNGEST_SERVER_KIND
        response["Access-Control-Allow-Origin"] = "*"
        return response


class RefuseNulMiddleware:
    """PostgreSQL text cannot hold NUL: a path or query parameter with one (%00) would fail the
    first query that uses it with a 500. No id, name or cursor of ours contains it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "\x00" in request.path or any("\x00" in key or "\x00" in value for key, value in request.GET.items()):
            return JsonResponse({"status": 400, "error": "the URL contains a NUL character"}, status=400)
        return self.get_response(request)


class SigningKeyAuthMiddleware:
    """With a signing key set, the APIs SDKs and tools call need `Authorization: Bearer <key or
    its hash>` (protocol.md §1.2). The UI has its own login; /e/ has event keys; /health and
    /metrics stay open for probes and scrapers."""

    PROTECTED = ("/fn/register", "/v0/", "/v1/", "/dev")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        keys = signing.configured_keys()
        if keys and request.path.startswith(self.PROTECTED) and request.method != "OPTIONS":
            if not signing.is_authorized(request.headers.get("Authorization", ""), keys):
                return HttpResponse("Authentication failed", status=401, content_type="text/plain")
        return self.get_response(request)
