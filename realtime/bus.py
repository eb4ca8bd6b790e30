"""How frames travel from a publisher to every process that serves subscribers.

Production: Redis pub/sub. Any process (gunicorn's ASGI workers, celery workers, on any machine)
publishes; each ASGI worker holds one pub/sub connection, subscribed to the topics its own
subscribers follow, and hands what arrives to its Fanout. Dev mode (`manage.py dev`, one process,
no Redis needed): an in-process bus that hands frames straight to the event loop.

Redis pub/sub keeps nothing: a message published while nobody follows its topic is gone, as in
Inngest. Subscribers of one token are counted in Redis too, so the per-token limit holds across
processes.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from typing import Protocol

import redis
import redis.asyncio as aioredis
from django.conf import settings

from realtime.fanout import Fanout

log = logging.getLogger(__name__)
SLOT_KEY = "inngest:rt:slots:{token_id}"


class Bus(Protocol):
    def publish(self, key: str, frame: bytes) -> None: ...
    async def apublish(self, key: str, frame: bytes) -> None: ...
    async def start(self, fanout: Fanout) -> None: ...
    async def stop(self) -> None: ...
    async def follow(self, keys: list[str]) -> None: ...
    async def unfollow(self, keys: list[str]) -> None: ...
    async def take_slot(self, token_id: str, limit: int, ttl: int) -> bool: ...
    async def give_slot(self, token_id: str) -> None: ...
    async def keep_slot(self, token_id: str, ttl: int) -> None: ...


class LocalBus:
    """One process: publishers on any thread (the in-process worker) reach the loop's Fanout."""

    def __init__(self) -> None:
        self._fanout: Fanout | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots: dict[str, int] = {}

    def publish(self, key: str, frame: bytes) -> None:
        loop, fanout = self._loop, self._fanout
        if loop is None or fanout is None or loop.is_closed():
            return  # no ASGI server in this process, so no subscriber to miss it
        loop.call_soon_threadsafe(fanout.deliver, key, frame)

    async def apublish(self, key: str, frame: bytes) -> None:
        if self._fanout is not None:
            self._fanout.deliver(key, frame)

    async def start(self, fanout: Fanout) -> None:
        self._fanout, self._loop = fanout, asyncio.get_running_loop()

    async def stop(self) -> None:
        self._fanout = self._loop = None

    async def follow(self, keys: list[str]) -> None:
        pass

    async def unfollow(self, keys: list[str]) -> None:
        pass

    async def take_slot(self, token_id: str, limit: int, ttl: int) -> bool:
        if self._slots.get(token_id, 0) >= limit:
            return False
        self._slots[token_id] = self._slots.get(token_id, 0) + 1
        return True

    async def give_slot(self, token_id: str) -> None:
        left = self._slots.get(token_id, 0) - 1
        if left > 0:
            self._slots[token_id] = left
        else:
            self._slots.pop(token_id, None)

    async def keep_slot(self, token_id: str, ttl: int) -> None:
        pass


class RedisBus:
    def __init__(self, url: str) -> None:
        self._url = url
        self._sync_client: redis.Redis | None = None
        self._sync_lock = threading.Lock()
        self._client: aioredis.Redis | None = None
        self._pubsub = None
        self._listener: asyncio.Task | None = None
        # Topics asked for and not yet confirmed by Redis: a subscriber is told it is connected
        # only once its topics are, so nothing published after that is missed.
        self._confirmations: dict[str, asyncio.Future] = {}
        self._connected: asyncio.Event | None = None

    def publish(self, key: str, frame: bytes) -> None:
        with self._sync_lock:
            if self._sync_client is None:
                self._sync_client = redis.Redis.from_url(self._url, socket_timeout=5, socket_connect_timeout=5)
        self._sync_client.publish(key, frame)

    async def apublish(self, key: str, frame: bytes) -> None:
        await self._async_client().publish(key, frame)

    def _async_client(self) -> aioredis.Redis:
        if self._client is None:
            self._client = aioredis.Redis.from_url(self._url, socket_timeout=5, socket_connect_timeout=5)
        return self._client

    async def start(self, fanout: Fanout) -> None:
        """Connects nothing yet: a server started while Redis is down serves everything else, and
        realtime as soon as Redis is back."""
        # Reads block on this connection for as long as nothing is published: no socket timeout.
        self._pubsub = aioredis.Redis.from_url(self._url, socket_connect_timeout=5).pubsub()
        self._connected = asyncio.Event()
        self._listener = asyncio.create_task(self._listen(fanout), name="realtime-redis-listener")

    async def _listen(self, fanout: Fanout) -> None:
        # A channel of this process's own, so the connection exists before any subscriber.
        own_channel = f"inngest:rt:process:{uuid.uuid4().hex}"
        is_failing = False
        while True:
            try:
                if self._pubsub.connection is None:
                    await self._pubsub.subscribe(own_channel)
                    self._connected.set()
                message = await self._pubsub.get_message(timeout=None)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - Redis went away: redis-py reconnects and resubscribes
                if not is_failing:  # once per outage, not twice a second
                    log.warning("realtime: reading Redis pub/sub failed; retrying until it is back", exc_info=True)
                is_failing = True
                await asyncio.sleep(0.5)
                continue
            is_failing = False
            self._connected.set()  # a read came back: the connection is up (again)
            if not message:
                continue
            if message["type"] == "message":
                fanout.deliver(message["channel"].decode(), message["data"])
            elif message["type"] == "subscribe":
                waiting = self._confirmations.pop(message["channel"].decode(), None)
                if waiting is not None and not waiting.done():
                    waiting.set_result(None)

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
        for closable in (self._pubsub, self._client):
            if closable is not None:
                await closable.aclose()

    async def follow(self, keys: list[str]) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.wait_for(self._connected.wait(), timeout=5)  # one connection, opened by the listener
        waiting = [self._confirmations.setdefault(key, loop.create_future()) for key in keys]
        await self._pubsub.subscribe(*keys)
        await asyncio.wait_for(asyncio.gather(*waiting), timeout=10)

    async def unfollow(self, keys: list[str]) -> None:
        await self._pubsub.unsubscribe(*keys)

    async def take_slot(self, token_id: str, limit: int, ttl: int) -> bool:
        key = SLOT_KEY.format(token_id=token_id)
        async with self._async_client().pipeline(transaction=True) as pipe:
            taken, _ = await pipe.incr(key).expire(key, ttl).execute()
        if taken > limit:
            await self.give_slot(token_id)
            return False
        return True

    async def give_slot(self, token_id: str) -> None:
        await self._async_client().decr(SLOT_KEY.format(token_id=token_id))

    async def keep_slot(self, token_id: str, ttl: int) -> None:
        """The count outlives a process that died holding slots by `ttl` at most."""
        await self._async_client().expire(SLOT_KEY.format(token_id=token_id), ttl)


_bus: Bus | None = None
_bus_lock = threading.Lock()


def current_bus() -> Bus:
    """Redis whenever the deployment has one and this is not the one-process dev server."""
    global _bus
    with _bus_lock:
        if _bus is None:
            use_redis = bool(settings.REDIS_URL) and not settings.INNGEST_DEV_MODE
            _bus = RedisBus(settings.REDIS_URL) if use_redis else LocalBus()
        return _bus
