"""The REST v1 answer shape: `{"data": …, "metadata": {"fetched_at": …}}` (protocol.md §1.10)."""
from __future__ import annotations

from typing import Any

from django.utils import timezone
from rest_framework.response import Response


def v1_response(data: Any, status: int = 200) -> Response:
    return Response({"data": data, "metadata": {"fetched_at": timezone.now().isoformat()}}, status=status)


def v1_error(message: str, status: int) -> Response:
    """The "publicerr" shape used by the server's API errors (§1.3)."""
    return Response(v1_error_body(message, status), status=status)


def v1_error_body(message: str, status: int) -> dict:
    return {"error": message, "status": status}
