"""Realtime benchmark, production mode on this machine: `.venv/bin/python bench/realtime.py [--quick]`.

Starts the production stack (`manage.py start --workers 0`: gunicorn's ASGI workers, fanned out
through Redis; PostgreSQL database `inngest_bench`, Redis db 13, or BENCH_REDIS_URL), opens
server-sent-event subscribers on one topic and publishes to it over HTTP, then prints:
publish → subscriber latency (p50, p95; one message at a time) and messages/s (publishers
sending as fast as they can: messages published per second, and messages delivered to
subscribers per second). Publisher and subscribers are asyncio clients in this process, on the
same two cores as the server and Redis.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import httpx
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.stacks import TEST_ENV, ProductionStack, recreate_database  # noqa: E402

DATABASE = "inngest_bench"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")


class Subscriber:
    """One SSE subscription: records (message number, receipt time) of what it reads."""

    def __init__(self, client: httpx.AsyncClient, base_url: str, token: str) -> None:
        self.received: dict[int, float] = {}
        self.ready = asyncio.Event()
        self.task = asyncio.create_task(self.read(client, base_url, token))

    async def read(self, client: httpx.AsyncClient, base_url: str, token: str) -> None:
        async with client.stream("GET", f"{base_url}/v1/realtime/sse", params={"token": token}) as answer:
            assert answer.status_code == 200, await answer.aread()
            self.ready.set()
            async for line in answer.aiter_lines():
                if line.startswith("data: "):
                    arrived = time.perf_counter()
                    self.received[json.loads(line[6:])["data"]["n"]] = arrived


async def open_subscribers(client: httpx.AsyncClient, base_url: str, channel: str, count: int) -> list[Subscriber]:
    subscribers = []
    for _ in range(count):
        answer = await client.post(f"{base_url}/v1/realtime/token", json=[{"channel": channel, "name": "bench", "kind": "run"}])
        subscribers.append(Subscriber(client, base_url, answer.json()["jwt"]))
    await asyncio.gather(*(s.ready.wait() for s in subscribers))
    return subscribers


async def publish(client: httpx.AsyncClient, base_url: str, channel: str, n: int, padding: str) -> float:
    sent = time.perf_counter()
    answer = await client.post(f"{base_url}/v1/realtime/publish", params={"channel": channel, "topic": "bench"},
                               content=json.dumps({"n": n, "padding": padding}), headers={"Content-Type": "application/json"})
    answer.raise_for_status()
    return sent


async def bench_latency(base_url: str, messages: int, subscriber_count: int) -> dict[str, str]:
    channel = f"bench-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(timeout=60) as client:
        subscribers = await open_subscribers(client, base_url, channel, subscriber_count)
        sent_at = {}
        for n in range(messages):
            sent_at[n] = await publish(client, base_url, channel, n, "")
            await asyncio.sleep(0.01)
        await wait_delivered(subscribers, messages)
        latencies = sorted((s.received[n] - sent_at[n]) * 1000 for s in subscribers for n in range(messages))
        for subscriber in subscribers:
            subscriber.task.cancel()
    return {"publish → subscriber latency p50": f"{statistics.median(latencies):.1f} ms",
            "publish → subscriber latency p95": f"{latencies[int(len(latencies) * 0.95)]:.1f} ms"}


async def bench_throughput(base_url: str, messages: int, subscriber_count: int, publishers: int) -> dict[str, str]:
    channel, padding = f"bench-{uuid.uuid4().hex[:8]}", "x" * 1000
    limits = httpx.Limits(max_connections=publishers + subscriber_count + 4)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        subscribers = await open_subscribers(client, base_url, channel, subscriber_count)
        numbers = iter(range(messages))

        async def publisher() -> None:
            for n in numbers:
                await publish(client, base_url, channel, n, padding)

        started = time.perf_counter()
        await asyncio.gather(*(publisher() for _ in range(publishers)))
        published = time.perf_counter() - started
        await wait_delivered(subscribers, messages)
        delivered = max(max(s.received.values()) for s in subscribers) - started
        for subscriber in subscribers:
            subscriber.task.cancel()
    return {f"messages published/s ({publishers} publishers, 1 KB)": f"{messages / published:.0f}",
            f"messages delivered/s (to {subscriber_count} subscribers)": f"{messages * subscriber_count / delivered:.0f}"}


async def wait_delivered(subscribers: list[Subscriber], messages: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while any(len(s.received) < messages for s in subscribers):
        if time.monotonic() > deadline:
            raise SystemExit(f"lost messages: {[len(s.received) for s in subscribers]} of {messages}")
        await asyncio.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small samples: well under a minute of measuring")
    parser.add_argument("--subscribers", type=int, default=4)
    parser.add_argument("--publishers", type=int, default=8)
    args = parser.parse_args()
    os.environ.setdefault("INNGEST_LOG_LEVEL", "WARNING")
    database_url = recreate_database(DATABASE)
    redis.Redis.from_url(REDIS_URL).flushdb()
    # The test suite's small realtime limits (tests/stacks.py) are not the product's: back to the defaults.
    defaults = {name: "" for name in TEST_ENV if name.startswith("INNGEST_REALTIME_")}
    stack = ProductionStack(database_url, REDIS_URL, lambda sql, params: [], workers=0, extra_env=defaults)
    try:
        figures = asyncio.run(bench_latency(stack.base_url, 100 if args.quick else 500, args.subscribers))
        figures |= asyncio.run(bench_throughput(stack.base_url, 1000 if args.quick else 5000, args.subscribers, args.publishers))
    finally:
        stack.stop()
        recreate_database(DATABASE, create=False)
    print(f"\nrealtime benchmark ({'quick' if args.quick else 'full'}; production mode, "
          f"{stack.env.get('INNGEST_HTTP_WORKERS', '2')} gunicorn ASGI workers, Redis pub/sub; {os.cpu_count()} cores)")
    for name, value in figures.items():
        print(f"  {name:<48} {value}")


if __name__ == "__main__":
    main()
