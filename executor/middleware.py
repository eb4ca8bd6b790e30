"""Every answer of the server carries X-Inngest-Server-Kind (protocol.md §1.1), and CORS is open."""
from __future__ import annotations

from typing import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse


class ServerKindMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response["X-Inngest-Server-Kind"] = settings.INNGEST_SERVER_KIND
        response["Access-Control-Allow-Origin"] = "*"
        return response
