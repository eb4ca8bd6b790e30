"""Who may do what at the realtime endpoints, on the ASGI application itself: the signing key may
mint tokens and publish; a subscription token only subscribes; a token with the publish right
only publishes."""
from __future__ import annotations

import asyncio

import httpx

from realtime.asgi import RealtimeApp
from realtime.messages import Topic
from realtime.tokens import mint_token

KEY = "Bearer the-signing-key"


def call(method: str, path: str, **kwargs) -> httpx.Response:
    app = RealtimeApp(is_signing_key=lambda authorization: authorization == KEY)

    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://server") as client:
            return await client.request(method, path, **kwargs)

    return asyncio.run(go())


def test_tokens_need_the_signing_key() -> None:
    wanted = [{"channel": "c", "name": "t", "kind": "run"}]
    assert call("POST", "/v1/realtime/token", json=wanted).status_code == 401
    publisher = mint_token([Topic("c", "t")], may_publish=True)
    assert call("POST", "/v1/realtime/token", json=wanted, headers={"Authorization": f"Bearer {publisher}"}).status_code == 401
    answer = call("POST", "/v1/realtime/token", json=wanted, headers={"Authorization": KEY})
    assert answer.status_code == 201 and answer.json()["jwt"].count(".") == 2


def test_publishing_needs_the_signing_key_or_a_token_with_the_publish_right() -> None:
    params = {"channel": "c", "topic": "t"}
    reader = mint_token([Topic("c", "t")])
    assert call("POST", "/v1/realtime/publish", params=params, json=1).status_code == 401
    assert call("POST", "/v1/realtime/publish", params=params, json=1, headers={"Authorization": f"Bearer {reader}"}).status_code == 401
    assert call("POST", "/v1/realtime/publish", params=params, json=1, headers={"Authorization": KEY}).status_code == 200
    publisher = mint_token([], may_publish=True)
    assert call("POST", "/v1/realtime/publish", params=params, json=1, headers={"Authorization": f"Bearer {publisher}"}).status_code == 200
    assert call("POST", "/v1/realtime/publish/tee", params={"channel": "c"}, content=b"x").status_code == 401


def test_unknown_realtime_paths_are_404_in_the_error_shape() -> None:
    answer = call("GET", "/v1/realtime/nothing")
    assert answer.status_code == 404 and answer.json()["status"] == 404


def test_without_its_bus_realtime_answers_503() -> None:
    from django.test import override_settings

    from realtime import bus

    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):
        bus._bus = None
        try:
            answer = call("POST", "/v1/realtime/publish", params={"channel": "c", "topic": "t"}, json=1, headers={"Authorization": KEY})
        finally:
            bus._bus = None
    assert answer.status_code == 503 and "Redis" in answer.json()["error"]
