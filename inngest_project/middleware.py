"""Every answer of the server carries X-Inngest-Server-Kind (protocol.md §1.1), and CORS is open;
a URL with a NUL character is refused before any view sees it; signing-key auth; body caps."""
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
    its hash>` (protocol.md §1.2), and so does /invoke/{slug}, which starts any function with
    any data (Inngest's OSS server leaves it open). The UI has its own login; /e/ has event keys;
    /health and /metrics stay open for probes and scrapers."""

    PROTECTED = ("/fn/register", "/v0/", "/v1/", "/dev", "/invoke/")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if is_refused_by_signing_key(request.path, request.method or "", request.headers.get("Authorization", "")):
            return HttpResponse("Authentication failed", status=401, content_type="text/plain")
        return self.get_response(request)


def is_refused_by_signing_key(path: str, method: str, authorization: str) -> bool:
    """SigningKeyAuthMiddleware's rule, which the routes served in front of Django
    (inngest_project/native_route.py) apply too: with a signing key set, a protected path needs it."""
    keys = signing.configured_keys()
    if not keys or not path.startswith(SigningKeyAuthMiddleware.PROTECTED) or method == "OPTIONS" or _is_run_output(path):
        return False
    return not signing.is_authorized(authorization, keys)


def _is_run_output(path: str) -> bool:
    """A Durable Endpoint's output (`/v1/http/runs/{id}/output`): its client follows a redirect
    with the run's own token, and has no signing key (executor/api/endpoints.py)."""
    return path.startswith("/v1/http/runs/") and path.endswith("/output") and path.count("/") == 5


class BodyLimitMiddleware:
    """A body over its endpoint's cap is refused from its Content-Length, in the endpoint's error
    shape, before anything reads it. (Django reads no more than Content-Length, and nothing
    without one, so the header is the whole story.)"""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = body_limit(request.path)
        if declared_length(request) > limit:
            return too_large(request.path, f"Request body is larger than {limit} bytes")
        return self.get_response(request)


# SDK calls that carry an app's configuration or a run's data (the /v1 ones: protocol.md §1.10).
SDK_DATA_PATHS = ("/fn/register", "/v1/checkpoint", "/v1/http/", "/v1/signals", "/v1/traces/", "/v0/connect/")
API_PATHS = ("/invoke/", "/v0/", "/v1/", "/api/")


def declared_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0  # as Django reads it: no body


def body_limit(path: str) -> int:
    if path.startswith("/e/"):
        return settings.INNGEST_MAX_REQUEST_BYTES
    if path.startswith(SDK_DATA_PATHS):
        return settings.INNGEST_MAX_SDK_REQUEST_BYTES
    if path.startswith("/invoke/"):
        return settings.INNGEST_MAX_EVENT_BYTES
    if path.startswith(API_PATHS):
        return settings.INNGEST_MAX_API_REQUEST_BYTES
    return settings.INNGEST_MAX_FORM_BYTES


def too_large(path: str, message: str) -> HttpResponse:
    """413 in the shape each endpoint answers its other errors with."""
    if path.startswith("/e/"):
        return JsonResponse({"ids": [], "status": 413, "error": message}, status=413)
    if path == "/v0/gql":
        return JsonResponse({"data": None, "errors": [{"message": message}]}, status=413)
    if path.startswith(SDK_DATA_PATHS + API_PATHS):
        return JsonResponse({"status": 413, "error": message}, status=413)
    return HttpResponse(message, status=413, content_type="text/plain")
