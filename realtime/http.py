"""Just enough of ASGI's HTTP side for the realtime endpoints, which Django cannot serve: Django's
ASGI handler reads a whole request body before the view runs, and a `text/stream` publish or a
Durable Endpoint's tee must reach subscribers while the body is still arriving."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable
from urllib.parse import parse_qs

from django.conf import settings

Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


class BodyTooLarge(Exception):
    pass


@dataclass
class Request:
    scope: dict
    receive: Receive

    @property
    def path(self) -> str:
        return self.scope["path"]

    @property
    def method(self) -> str:
        return self.scope.get("method", "GET")

    def header(self, name: str) -> str:
        wanted = name.lower().encode()
        for key, value in self.scope.get("headers", ()):
            if key == wanted:
                return value.decode("latin-1")
        return ""

    def query(self, name: str) -> str:
        return (self.query_list(name) or [""])[0]

    def query_list(self, name: str) -> list[str]:
        return parse_qs(self.scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True).get(name, [])

    def bearer(self) -> str:
        scheme, _, token = self.header("authorization").partition(" ")
        return token.strip() if scheme.lower() == "bearer" else ""

    def declared_length(self) -> int:
        try:
            return int(self.header("content-length") or 0)
        except ValueError:
            return 0

    async def body_pieces(self, limit: int) -> AsyncIterator[bytes]:
        """The body as it arrives; raises BodyTooLarge once more than `limit` bytes came."""
        received = 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                return
            piece = message.get("body", b"")
            received += len(piece)
            if received > limit:
                raise BodyTooLarge(f"Request body is larger than {limit} bytes")
            if piece:
                yield piece
            if not message.get("more_body"):
                return

    async def body(self, limit: int) -> bytes:
        return b"".join([piece async for piece in self.body_pieces(limit)])


def common_headers(content_type: str) -> list[tuple[bytes, bytes]]:
    return [(b"content-type", content_type.encode()), (b"x-inngest-server-kind", settings.INNGEST_SERVER_KIND.encode()),
            (b"access-control-allow-origin", b"*"), (b"cache-control", b"no-store")]


async def respond(send: Send, status: int, body: bytes = b"", content_type: str = "application/json") -> None:
    await send({"type": "http.response.start", "status": status, "headers": common_headers(content_type)})
    await send({"type": "http.response.body", "body": body})


async def respond_json(send: Send, status: int, document: Any) -> None:
    await respond(send, status, json.dumps(document).encode())


async def respond_error(send: Send, status: int, message: str) -> None:
    """Errors in the shape the rest of the API answers them: `{"status", "error"}`."""
    await respond_json(send, status, {"status": status, "error": message})


async def wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] not in ("http.disconnect", "websocket.disconnect"):
        pass
