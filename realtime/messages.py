"""The wire shapes: a topic's key on the bus, and the frames the bus carries.

A frame is one byte saying what it holds, then the bytes: `m` a message (JSON text, written to
subscribers as it is), `r` raw bytes a Durable Endpoint tees through (written to subscribers
untouched; the SDK's stream is already server-sent events). Subscribers are served the same
frames whichever process or machine published them.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone

MESSAGE_FRAME = b"m"
RAW_FRAME = b"r"
# The topic a Durable Endpoint's raw stream is teed to, on the channel named after its run.
STREAM_TOPIC = "$stream"
MAX_NAME_LENGTH = 256


@dataclass(frozen=True)
class Topic:
    channel: str
    name: str

    @property
    def key(self) -> str:
        """The bus channel: the channel is hashed so that a user's long channel name stays short."""
        digest = hashlib.sha256(self.channel.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        return f"inngest:rt:{digest}:{self.name}"


def name_problem(what: str, value: object) -> str | None:
    """Why a channel or topic name cannot be used, or None."""
    if not isinstance(value, str) or not value:
        return f"{what} must be a non-empty string"
    if len(value) > MAX_NAME_LENGTH:
        return f"{what} must be at most {MAX_NAME_LENGTH} characters"
    return None


def now_text() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def as_json_text(body: bytes) -> str:
    """A body that is JSON is passed through as it is, anything else as a JSON string (as Inngest
    does). NaN and Infinity are not JSON to a browser's parser, so they make the body a string."""
    text = body.decode("utf-8", "replace")
    try:
        json.loads(text, parse_constant=_refuse_constant)
    except ValueError:
        return json.dumps(text)
    return text


def _refuse_constant(name: str) -> None:
    raise ValueError(name)


def message_frame(kind: str, topic: Topic, data_json: str, run_id: str | None = None,
                  stream_id: str | None = None) -> bytes:
    """One message as its subscribers receive it. `data_json` is JSON text already (a published
    body is not parsed and dumped again)."""
    head = {"kind": kind, "channel": topic.channel, "topic": topic.name, "created_at": now_text()}
    if run_id:
        head["run_id"] = run_id
    if stream_id:
        head["stream_id"] = stream_id
    return MESSAGE_FRAME + json.dumps(head)[:-1].encode() + b', "data": ' + data_json.encode("utf-8", "surrogatepass") + b"}"
