"""The benchmark's SDK app: the official `inngest` SDK on Flask, served by gunicorn (bench/core.py).

`bench-three-steps` has three steps that return at once. Its first step returns the time at
which the app first ran the function (a memoized step keeps that value), which gives "event
sent → first SDK call" without any clock shared between processes but the machine's.
A WSGI wrapper adds up the time each request spends inside the app, per run, in Redis, so
the benchmark can subtract it from the run's duration: only for runs whose event asks for it
(`"timed": true` in its data, bench/core.py latency_sample). Under a throughput load that
bookkeeping (a JSON parse and a Redis write per call) would be the harness's cost, not the
server's, and DBOS's runs pay nothing like it.
"""
from __future__ import annotations

import datetime
import json
import os
import time
from typing import Any, Callable, Iterable

import flask
import inngest
import inngest.flask
import redis

SERVER_URL = os.environ["BENCH_SERVER_URL"]
REDIS_URL = os.environ["BENCH_REDIS_URL"]
TIMINGS_KEY = "bench:app-seconds"
TIMED = b'"timed":true'  # in a run's event data, as the server sends it (compact JSON, signed or not)

# With a signing key (a bench's signed mode) the app runs as in production: it verifies the
# server's signature on every call and signs its answers; without one, as against a dev server.
SIGNING_KEY = os.environ.get("BENCH_SIGNING_KEY") or None
client = inngest.Inngest(app_id="bench", is_production=SIGNING_KEY is not None, signing_key=SIGNING_KEY,
                         event_key="bench" if SIGNING_KEY else None, api_base_url=SERVER_URL, event_api_base_url=SERVER_URL)
store = redis.Redis.from_url(REDIS_URL)


@client.create_function(fn_id="bench-three-steps", trigger=inngest.TriggerEvent(event="bench/three-steps"))
def three_steps(ctx: inngest.ContextSync) -> dict:
    first_call_at = ctx.step.run("first-call-at", time.time)
    two = ctx.step.run("two", lambda: 2)
    three = ctx.step.run("three", lambda: 3)
    return {"first_call_at": first_call_at, "sum": two + three, "sent_at": ctx.event.data.get("sent_at")}


@client.create_function(fn_id="bench-sleeper", trigger=inngest.TriggerEvent(event="bench/sleeper"))
def sleeper(ctx: inngest.ContextSync) -> dict:
    seconds = ctx.event.data["seconds"]
    wake_at = ctx.step.run("plan", lambda: time.time() + seconds)
    ctx.step.sleep("nap", datetime.timedelta(seconds=seconds))
    woke_at = ctx.step.run("woke", time.time)
    return {"wake_at": wake_at, "woke_at": woke_at}


@client.create_function(fn_id="bench-waiter", trigger=inngest.TriggerEvent(event="bench/waiter"))
def waiter(ctx: inngest.ContextSync) -> object:
    found = ctx.step.wait_for_event("approval", event="bench/approve", if_exp="event.data.k == async.data.k",
                                    timeout=datetime.timedelta(hours=1))
    return found.data if found else None


def _three_steps_limited(fn_id: str, limit: inngest.Concurrency) -> inngest.Function:
    """The three-step function under a concurrency limit high enough never to make it wait:
    what it costs is the price of the slot bookkeeping alone (bench/flow_control.py)."""

    @client.create_function(fn_id=fn_id, trigger=inngest.TriggerEvent(event=f"bench/{fn_id}"), concurrency=[limit])
    def limited(ctx: inngest.ContextSync) -> dict:
        ctx.step.run("first-call-at", time.time)
        two = ctx.step.run("two", lambda: 2)
        three = ctx.step.run("three", lambda: 3)
        return {"sum": two + three}

    return limited


IN_FLIGHT_KEY, PEAK_KEY = "bench:in-flight", "bench:peak"


def _io_bound(fn_id: str, concurrency: list[inngest.Concurrency] | None) -> inngest.Function:
    """One step that waits 50 ms (an API call, say) and counts how many run at once."""

    @client.create_function(fn_id=fn_id, trigger=inngest.TriggerEvent(event=f"bench/{fn_id}"), concurrency=concurrency)
    def io_bound(ctx: inngest.ContextSync) -> None:
        def call_api() -> int:
            now = store.incr(f"{IN_FLIGHT_KEY}:{fn_id}")
            store.eval("if tonumber(redis.call('GET', KEYS[1]) or 0) < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end",
                       1, f"{PEAK_KEY}:{fn_id}", now)
            time.sleep(0.05)
            store.decr(f"{IN_FLIGHT_KEY}:{fn_id}")
            return now

        ctx.step.run("call-api", call_api)

    return io_bound


FUNCTIONS = [
    three_steps, sleeper, waiter,
    _three_steps_limited("limited-unkeyed", inngest.Concurrency(limit=1000)),
    _three_steps_limited("limited-keyed", inngest.Concurrency(limit=1000, key="event.data.user")),
    _io_bound("io-limited-10", [inngest.Concurrency(limit=10)]),
    _io_bound("io-unlimited", None),
]
flask_app = flask.Flask("bench")
inngest.flask.serve(flask_app, client, FUNCTIONS)


def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
    """Times the whole request inside the app and files it under the run id of the call."""
    started = time.perf_counter()
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    import io

    environ["wsgi.input"] = io.BytesIO(body)
    result = list(flask_app(environ, start_response))
    elapsed = time.perf_counter() - started
    run_id = _run_id(body) if TIMED in body else None  # every call body carries its run's events
    if run_id:
        store.hincrbyfloat(TIMINGS_KEY, run_id, elapsed)
    return result


def _run_id(body: bytes) -> str | None:
    if not body:
        return None
    try:
        payload: Any = json.loads(body)
    except ValueError:
        return None
    return (payload.get("ctx") or {}).get("run_id") if isinstance(payload, dict) else None
