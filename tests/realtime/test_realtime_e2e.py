"""Realtime against both stacks (dev: one process, in-process bus; production: gunicorn's ASGI
workers fanned out through Redis): publish, subscribe over server-sent events and WebSockets,
tokens, limits."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid

import pytest
import requests
from websockets.exceptions import InvalidStatus

from tests.realtime.clients import SseListener, WebSocketListener, publish, token_for
from tests.stacks import ROOT, ProductionStack, wait_for

pytestmark = pytest.mark.e2e


def channel() -> str:
    return f"chan-{uuid.uuid4().hex[:10]}"


def test_a_published_message_reaches_sse_and_websocket_subscribers_of_its_topic_only(stack) -> None:
    server, _ = stack
    name = channel()
    sse = SseListener(server.base_url, token_for(server.base_url, name, "progress"))
    ws = WebSocketListener(server.base_url, token_for(server.base_url, name, "progress"))
    other = SseListener(server.base_url, token_for(server.base_url, name, "other-topic"))
    time.sleep(0.3)  # the WebSocket is accepted once subscribed; give its first read a moment
    try:
        assert publish(server.base_url, name, "progress", {"step": 1}, run_id="01RUN").status_code == 200
        assert publish(server.base_url, name, "progress", "plain text").status_code == 200
        for listener in (sse, ws):
            first, second = listener.wait_for_count(2)
            assert first["kind"] == "data" and first["data"] == {"step": 1}
            assert (first["channel"], first["topic"], first["run_id"]) == (name, "progress", "01RUN")
            assert first["created_at"].endswith("Z")
            assert second["data"] == "plain text"
        time.sleep(0.5)
        assert other.messages == []
    finally:
        for listener in (sse, ws, other):
            listener.close()


def test_a_streamed_publish_arrives_as_start_chunks_and_end(stack) -> None:
    server, _ = stack
    name = channel()
    sse = SseListener(server.base_url, token_for(server.base_url, name, "tokens"))
    text = "é" * 1500 + "done"  # two-byte characters across chunk boundaries arrive whole

    def body():
        encoded = text.encode()
        for start in range(0, len(encoded), 333):
            yield encoded[start:start + 333]

    answer = requests.post(f"{server.base_url}/v1/realtime/publish", params={"channel": name, "topic": "tokens"},
                           data=body(), headers={"Content-Type": "text/stream"}, timeout=10)
    assert answer.status_code == 200, answer.text
    wait_for(lambda: sse.messages and sse.messages[-1]["kind"] == "datastream-end", what="the stream's end")
    kinds = [m["kind"] for m in sse.messages]
    assert kinds[0] == "datastream-start" and set(kinds[1:-1]) == {"chunk"}
    stream_id = sse.messages[0]["data"]
    assert all(m["stream_id"] == stream_id for m in sse.messages)
    assert "".join(m["data"] for m in sse.messages[1:-1]) == text
    sse.close()


def test_a_durable_endpoint_tee_reaches_the_runs_stream_subscribers_untouched(stack) -> None:
    server, _ = stack
    run_id = f"01RUN{uuid.uuid4().hex[:8].upper()}"
    sse = SseListener(server.base_url, token_for(server.base_url, run_id, "$stream"))
    raw = b'event: inngest\ndata: {"hello": "world"}\n\n'
    answer = requests.post(f"{server.base_url}/v1/realtime/publish/tee", params={"channel": run_id}, data=raw, timeout=10)
    assert answer.status_code == 200
    wait_for(lambda: raw in bytes(sse.raw), what="the teed bytes")
    sse.close()


def test_bad_requests_get_clear_errors(stack) -> None:
    server, _ = stack
    base = server.base_url
    assert publish(base, "", "t", 1).json() == {"status": 400, "error": "channel must be a non-empty string"}
    assert publish(base, "c", "t", {"big": "x" * 250_000}).status_code == 413
    assert requests.post(f"{base}/v1/realtime/token", data="{", timeout=5).status_code == 400
    assert requests.post(f"{base}/v1/realtime/token", json=[{"channel": "c"}], timeout=5).json()["error"] == \
        "Invalid request: name must be a non-empty string"
    assert requests.get(f"{base}/v1/realtime/sse", params={"token": "forged"}, timeout=5).status_code == 401
    assert requests.get(f"{base}/v1/realtime/sse", timeout=5).status_code == 401
    with pytest.raises(InvalidStatus):
        WebSocketListener(base, "forged")


def test_a_token_holds_a_limited_number_of_subscribers(stack) -> None:
    server, _ = stack
    token = token_for(server.base_url, channel(), "t")
    held = [SseListener(server.base_url, token) for _ in range(3)]  # INNGEST_REALTIME_MAX_SUBSCRIBERS_PER_TOKEN
    try:
        assert [listener.status for listener in held] == [200, 200, 200]
        refused = requests.get(f"{server.base_url}/v1/realtime/sse", params={"token": token}, timeout=5)
        assert refused.status_code == 429 and "3 subscribers" in refused.json()["error"]
        held.pop().close()
        wait_for(lambda: requests.get(f"{server.base_url}/v1/realtime/sse", params={"token": token}, stream=True,
                                      timeout=5).status_code == 200, what="the freed slot")
    finally:
        for listener in held:
            listener.close()


def test_an_idle_subscription_is_closed(stack) -> None:
    server, _ = stack
    sse = SseListener(server.base_url, token_for(server.base_url, channel(), "quiet"))
    started = time.monotonic()
    assert sse.ended.wait(20), "the idle subscription was not closed"
    assert 5 <= time.monotonic() - started < 15  # INNGEST_REALTIME_IDLE_SECONDS=6
    assert bytes(sse.raw).count(b":\n\n") >= 4  # keepalives meanwhile


def test_a_slow_subscriber_is_dropped_without_holding_up_publishers_or_others(stack) -> None:
    server, _ = stack
    name = channel()
    token = token_for(server.base_url, name, "firehose")
    fast = SseListener(server.base_url, token)
    # A client that subscribes and never reads: its socket buffers fill, then its queue.
    stalled = socket.create_connection(("127.0.0.1", server.port))
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.sendall(f"GET /v1/realtime/sse?token={token} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    time.sleep(0.5)
    try:
        payload = {"blob": "x" * 150_000}
        started = time.monotonic()
        for _ in range(120):
            assert publish(server.base_url, name, "firehose", payload).status_code == 200
        publishing = time.monotonic() - started
        fast.wait_for_count(120, timeout=60)
        assert publishing < 30, f"publishing 120 messages took {publishing:.1f}s"
        # The stalled subscriber was dropped: its slot is free again for a third subscriber.
        wait_for(lambda: held_slots(server.base_url, token) < 3, timeout=20, what="the stalled subscriber's slot")
    finally:
        stalled.close()
        fast.close()


def held_slots(base_url: str, token: str) -> int:
    """How many subscribers the token holds, found by filling its free slots."""
    extra = []
    try:
        while len(extra) < 3:
            answer = requests.get(f"{base_url}/v1/realtime/sse", params={"token": token}, stream=True, timeout=5)
            if answer.status_code != 200:
                answer.close()
                break
            extra.append(answer)
        return 3 - len(extra)
    finally:
        for answer in extra:
            answer.close()


def test_a_message_published_by_another_process_reaches_every_http_worker_subscriber(production_stack) -> None:
    """As a celery worker on another machine publishes: straight to Redis, through
    realtime.publishing; subscribers spread over gunicorn's worker processes all get it."""
    server, _ = production_stack
    name = channel()
    listeners = [SseListener(server.base_url, token_for(server.base_url, name, "news")) for _ in range(6)]
    publisher = ("from realtime.publishing import publish_message; "
                 f"publish_message({name!r}, 'news', {{'from': 'elsewhere'}}, run_id='01OTHER')")
    env = {**server.env, "DJANGO_SETTINGS_MODULE": "inngest_project.settings"}
    done = subprocess.run([sys.executable, "-c", f"import django; django.setup(); {publisher}"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    try:
        for listener in listeners:
            (message,) = listener.wait_for_count(1)
            assert message["data"] == {"from": "elsewhere"} and message["run_id"] == "01OTHER"
    finally:
        for listener in listeners:
            listener.close()
