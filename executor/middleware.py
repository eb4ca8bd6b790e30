"""Every answer of the server carries X-Inngest-Server-Kind (protocol.md §1.1), and CORS is open."""
from __future__ import annotations

from typing import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from executor import signing


class ServerKindMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response["X-Inngest-Server-Kind"] = settings.INNGEST_SERVER_KIND
        response["Access-Control-Allow-Origin"] = "*"
        return response


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
