"""Publishing from anywhere in the server (a celery worker, a view, the dev server's threads).

These never wait for subscribers: a frame goes to the bus (one Redis PUBLISH, or a hand-off to the
dev server's event loop) and the call returns.
"""
from __future__ import annotations

import json
from typing import Any

from realtime.bus import current_bus
from realtime.messages import RAW_FRAME, STREAM_TOPIC, Topic, message_frame


def publish_message(channel: str, topic: str, data: Any, run_id: str | None = None) -> None:
    """A `data` message (any JSON-serialisable value) to the subscribers of `channel`/`topic`."""
    target = Topic(channel=channel, name=topic)
    current_bus().publish(target.key, message_frame("data", target, json.dumps(data), run_id=run_id))


def write_stream(run_id: str, chunk: bytes) -> None:
    """Raw bytes of a Durable Endpoint's response to the subscribers of its run's stream (the
    holders of `tokens.mint_run_stream_token(run_id)`), written to them untouched."""
    current_bus().publish(Topic(channel=run_id, name=STREAM_TOPIC).key, RAW_FRAME + chunk)
