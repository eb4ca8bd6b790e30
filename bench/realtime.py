"""Realtime benchmark, production mode on this machine: `.venv/bin/python bench/realtime.py [--quick]`.

Starts the production stack (`manage.py start --workers 0`: gunicorn's ASGI workers, fanned out
through Redis; PostgreSQL database `inngest_bench`, Redis db 13, or BENCH_REDIS_URL), opens
server-sent-event subscribers on one topic and publishes to it over HTTP, then prints:
publish → subscriber latency (p50, p95; one message at a time) and messages/s (wrk publishing as
fast as it can: messages published per second, and delivered to subscribers per second).
Subscribers and the latency publisher are bare asyncio sockets, so that the client is not what
is measured; everything shares the machine's cores with the server and Redis. Needs `wrk`.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import redis
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.stacks import TEST_ENV, ProductionStack, recreate_database  # noqa: E402

DATABASE = "inngest_bench"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
WRK_SCRIPT = """wrk.method = "POST"
wrk.body = '{"padding": "' .. string.rep("x", 1000) .. '"}'
wrk.headers["Content-Type"] = "application/json"
"""


class Subscriber:
    """One SSE subscription over a bare socket: the receipt time of each message, by its `n`, or
    only a count (`count_only`, for the throughput run)."""

    def __init__(self, base_url: str, token: str, count_only: bool = False) -> None:
        self.received: dict[int, float] = {}
        self.count = 0
        self.last_at = 0.0
        self.count_only = count_only
        self.ready = asyncio.Event()
        self.task = asyncio.create_task(self.read(base_url, token))

    async def read(self, base_url: str, token: str) -> None:
        address = urlsplit(base_url)
        reader, writer = await asyncio.open_connection(address.hostname, address.port)
        writer.write(f"GET /v1/realtime/sse?token={token} HTTP/1.1\r\nHost: {address.hostname}\r\n\r\n".encode())
        pending = b""
        while piece := await reader.read(1 << 16):
            arrived = time.perf_counter()
            if not self.ready.is_set() and b":\n\n" in piece:
                self.ready.set()
            if self.count_only:
                self.count += piece.count(b"data: ")
                self.last_at = arrived
                continue
            *events, pending = (pending + piece).split(b"\n\n")
            for event in events:
                if (start := event.find(b"data: ")) >= 0:
                    self.received[json.loads(event[start + 6:])["data"]["n"]] = arrived


async def open_subscribers(base_url: str, channel: str, count: int, count_only: bool = False) -> list[Subscriber]:
    subscribers = []
    for _ in range(count):
        token = requests.post(f"{base_url}/v1/realtime/token", json=[{"channel": channel, "name": "bench", "kind": "run"}],
                              timeout=10).json()["jwt"]
        subscribers.append(Subscriber(base_url, token, count_only))
    await asyncio.wait_for(asyncio.gather(*(s.ready.wait() for s in subscribers)), 30)
    return subscribers


async def bench_latency(base_url: str, messages: int, subscriber_count: int) -> dict[str, str]:
    channel = f"bench-{uuid.uuid4().hex[:8]}"
    subscribers = await open_subscribers(base_url, channel, subscriber_count)
    address = urlsplit(base_url)
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    sent_at = {}
    for n in range(messages):
        body = json.dumps({"n": n}).encode()
        sent_at[n] = time.perf_counter()
        writer.write(f"POST /v1/realtime/publish?channel={channel}&topic=bench HTTP/1.1\r\nHost: {address.hostname}\r\n"
                     f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        await read_answer(reader)
        await asyncio.sleep(0.01)
    writer.close()
    await wait_until(lambda: all(len(s.received) >= messages for s in subscribers), "every message at every subscriber")
    latencies = sorted((s.received[n] - sent_at[n]) * 1000 for s in subscribers for n in range(messages))
    for subscriber in subscribers:
        subscriber.task.cancel()
    return {"publish → subscriber latency p50": f"{statistics.median(latencies):.1f} ms",
            "publish → subscriber latency p95": f"{latencies[int(len(latencies) * 0.95)]:.1f} ms"}


async def read_answer(reader: asyncio.StreamReader) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    if match := re.search(rb"(?i)content-length: (\d+)", head):
        await reader.readexactly(int(match.group(1)))
    elif b"chunked" in head.lower():
        await reader.readuntil(b"0\r\n\r\n")


async def bench_throughput(base_url: str, seconds: int, subscriber_count: int) -> dict[str, str]:
    channel = f"bench-{uuid.uuid4().hex[:8]}"
    subscribers = await open_subscribers(base_url, channel, subscriber_count, count_only=True)
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(WRK_SCRIPT)
        script.flush()
        started = time.perf_counter()
        wrk = await asyncio.create_subprocess_exec(
            "wrk", "-t2", "-c8", f"-d{seconds}s", "-s", script.name,
            f"{base_url}/v1/realtime/publish?channel={channel}&topic=bench", stdout=subprocess.PIPE)
        output = (await wrk.communicate())[0].decode()
    published = int(re.search(r"(\d+) requests in", output).group(1))
    if "Non-2xx" in output:
        raise SystemExit(f"publishes failed:\n{output}")
    await wait_until(lambda: all(s.count >= published for s in subscribers), "every message at every subscriber")
    delivered = max(s.last_at for s in subscribers) - started
    for subscriber in subscribers:
        subscriber.task.cancel()
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    return {"messages published/s (wrk, 8 connections, 1 KB)": f"{rate:.0f}",
            f"messages delivered/s (to {subscriber_count} subscribers)": f"{published * subscriber_count / delivered:.0f}"}


async def wait_until(condition, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}: messages were lost")
        await asyncio.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small samples: well under a minute of measuring")
    parser.add_argument("--subscribers", type=int, default=4)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    os.environ.setdefault("INNGEST_LOG_LEVEL", "WARNING")
    database_url = recreate_database(DATABASE)
    redis.Redis.from_url(REDIS_URL).flushdb()
    # The test suite's small realtime limits (tests/stacks.py) are not the product's: back to the defaults.
    defaults = {name: "" for name in TEST_ENV if name.startswith("INNGEST_REALTIME_")}
    # wrk publishes faster than the server, on the same two cores, can fan out: subscribers fall
    # behind, and past the default buffer (1,000 messages) they would be dropped, as slow
    # subscribers are. Here the backlog is measured, not dropped.
    defaults["INNGEST_REALTIME_SUBSCRIBER_BUFFER"] = "10000000"
    stack = ProductionStack(database_url, REDIS_URL, lambda sql, params: [], workers=0, extra_env=defaults)
    try:
        figures = asyncio.run(bench_latency(stack.base_url, 100 if args.quick else 500, args.subscribers))
        figures |= asyncio.run(bench_throughput(stack.base_url, 3 if args.quick else 10, args.subscribers))
    finally:
        stack.stop()
        recreate_database(DATABASE, create=False)
    print(f"\nrealtime benchmark ({'quick' if args.quick else 'full'}; production mode, "
          f"{stack.env.get('INNGEST_HTTP_WORKERS', '2')} gunicorn ASGI workers, Redis pub/sub; {os.cpu_count()} cores)")
    for name, value in figures.items():
        print(f"  {name:<50} {value}")


if __name__ == "__main__":
    main()
