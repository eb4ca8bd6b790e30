"""The broker's queue of call messages, read to tell a message still waiting there from a lost one.

Under a backlog a message can wait in the queue for longer than INNGEST_LOST_MESSAGE_SECONDS;
re-sending its call would only add a message and a failed claim. kombu's Redis transport keeps a
queue as a Redis list: it LPUSHes each message and workers pop the other end, so the list's tail
holds the oldest messages still waiting. (kombu splits a queue into one list per priority step,
`inngest\\x06\\x163` and so on, only for messages sent with a priority; no task here sets one,
so every call message is in the one list named after the queue.)

Nothing here imports the project's Celery app: the broker and the queue are read from the
current app's configuration, as pending_calls sends its tasks by name.
"""
from __future__ import annotations

import base64
import functools
import json
import logging

import redis
from celery import current_app

EXECUTE_CALL_TASK = "executor.execute_call"
# The oldest messages are read, not only the last: the call of the very oldest may be gone (its
# run ended while a duplicate message for it was still waiting).
OLDEST_READ = 16

log = logging.getLogger(__name__)


def oldest_waiting_calls() -> list[int]:
    """The calls named by the oldest messages waiting in the call queue, oldest first. Empty when
    the queue is empty or cannot be read: the broker is not Redis (dev mode's memory broker), or
    Redis does not answer."""
    url = current_app.conf.broker_url or ""
    if url.split("://")[0] not in ("redis", "rediss"):
        return []
    try:
        messages = _client(url).lrange(current_app.conf.task_default_queue, -OLDEST_READ, -1)
    except Exception as exc:  # noqa: BLE001 - Redis down, or a broker URL redis-py reads otherwise than kombu: never stop the sweeper
        log.warning("cannot read the call queue (%s): lost messages are judged by their age alone", exc)
        return []
    return [call_id for call_id in map(_call_id, reversed(messages)) if call_id is not None]


@functools.lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    # A client keeps a pool and reconnects by itself after Redis restarts; the timeouts keep a
    # broker that hangs from holding up the timer tick.
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def _call_id(raw: bytes) -> int | None:
    """The call an execute_call message names. kombu's envelope is JSON; under Celery's message
    protocol 2 its body is the JSON of [args, kwargs, embed], base64-encoded."""
    try:
        message = json.loads(raw)
        if message["headers"].get("task") != EXECUTE_CALL_TASK:
            return None
        body = message["body"]
        if message["properties"].get("body_encoding") == "base64":
            body = base64.b64decode(body)
        call_id = json.loads(body)[0][0]
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return None  # not a message of ours, or an older protocol's: it tells nothing
    return call_id if isinstance(call_id, int) else None
