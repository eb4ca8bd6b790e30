"""Subscribers for the realtime tests: a server-sent events reader and a WebSocket reader, each in a
thread, collecting what arrives."""
from __future__ import annotations

import json
import threading
from typing import Any

import requests
from websockets.sync.client import connect

from tests.stacks import wait_for


def token_for(base_url: str, channel: str, *names: str) -> str:
    answer = requests.post(f"{base_url}/v1/realtime/token", json=[{"channel": channel, "name": n, "kind": "run"} for n in names],
                           timeout=10)
    assert answer.status_code == 201, answer.text
    return answer.json()["jwt"]


def publish(base_url: str, channel: str, topic: str, data: Any, **params: str) -> requests.Response:
    body = data if isinstance(data, (bytes, str)) else json.dumps(data)
    return requests.post(f"{base_url}/v1/realtime/publish", params={"channel": channel, "topic": topic, **params},
                         data=body, headers={"Content-Type": "application/json"}, timeout=10)


class SseListener:
    def __init__(self, base_url: str, token: str) -> None:
        self.response = requests.get(f"{base_url}/v1/realtime/sse", params={"token": token}, stream=True, timeout=(5, 60))
        self.status = self.response.status_code
        self.messages: list[dict] = []
        self.raw: bytearray = bytearray()
        self.ended = threading.Event()
        if self.status == 200:
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        pending = b""
        try:
            for piece in self.response.iter_content(chunk_size=None):
                self.raw.extend(piece)
                *events, pending = (pending + piece).split(b"\n\n")
                self.messages.extend(json.loads(event[6:]) for event in events if event.startswith(b"data: "))
        except Exception:  # noqa: BLE001 - closed by either side
            pass
        finally:
            self.ended.set()

    def wait_for_count(self, count: int, timeout: float = 15) -> list[dict]:
        wait_for(lambda: len(self.messages) >= count, timeout=timeout, what=f"{count} messages (have {self.messages})")
        return self.messages

    def close(self) -> None:
        self.response.close()


class WebSocketListener:
    def __init__(self, base_url: str, token: str) -> None:
        self._connecting = connect(base_url.replace("http://", "ws://") + f"/v1/realtime/connect?token={token}", open_timeout=10)
        self.socket = self._connecting.__enter__()
        self.messages: list[dict] = []
        self.ended = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for text in self.socket:
                self.messages.append(json.loads(text))
        except Exception:  # noqa: BLE001 - closed by either side
            pass
        finally:
            self.ended.set()

    def wait_for_count(self, count: int, timeout: float = 15) -> list[dict]:
        wait_for(lambda: len(self.messages) >= count, timeout=timeout, what=f"{count} messages (have {self.messages})")
        return self.messages

    def close(self) -> None:
        self.socket.close()
