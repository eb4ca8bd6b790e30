"""This process's subscribers, by topic key, and what feeds them.

Everything here runs on the ASGI server's event loop. Delivery never waits: a frame is put in each
subscriber's bounded queue without blocking, and a subscriber whose queue is full (a client that
reads slower than it is sent to) is marked overflowed and closed by its own connection task. So a
slow subscriber costs its own connection only, never the publisher, the bus or other subscribers.
"""
from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from realtime.bus import Bus


class Subscriber:
    def __init__(self, keys: set[str], buffer: int) -> None:
        self.keys = keys
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=buffer)
        self.overflowed = asyncio.Event()

    def offer(self, frame: bytes) -> None:
        if self.overflowed.is_set():
            return
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.overflowed.set()

    async def next_frame(self, wait: float) -> bytes | None:
        """The next frame, or None after `wait` seconds without one."""
        try:
            return await asyncio.wait_for(self.queue.get(), wait)
        except asyncio.TimeoutError:
            return None


class Fanout:
    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self._by_key: dict[str, set[Subscriber]] = defaultdict(set)
        # follow/unfollow of one key must not interleave (a subscribe racing the last unsubscribe).
        self._lock = asyncio.Lock()

    async def add(self, subscriber: Subscriber) -> None:
        async with self._lock:
            new_keys = [key for key in subscriber.keys if not self._by_key.get(key)]
            for key in subscriber.keys:
                self._by_key[key].add(subscriber)
            if new_keys:
                await self.bus.follow(new_keys)

    async def remove(self, subscriber: Subscriber) -> None:
        async with self._lock:
            gone = []
            for key in subscriber.keys:
                holders = self._by_key.get(key)
                if holders is None:
                    continue
                holders.discard(subscriber)
                if not holders:
                    del self._by_key[key]
                    gone.append(key)
            if gone:
                await self.bus.unfollow(gone)

    def deliver(self, key: str, frame: bytes) -> None:
        for subscriber in tuple(self._by_key.get(key, ())):
            subscriber.offer(frame)

    @property
    def subscriber_count(self) -> int:
        return len({subscriber for holders in self._by_key.values() for subscriber in holders})
