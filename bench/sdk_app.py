"""The benchmark's SDK app: the official `inngest` SDK on Flask, served by gunicorn (bench/core.py).

`bench-three-steps` has three steps that return at once. Its first step returns the time at
which the app first ran the function (a memoized step keeps that value), which gives "event
sent → first SDK call" without any clock shared between processes but the machine's.
A WSGI wrapper adds up the time each request spends inside the app, per run, in Redis, so
the benchmark can subtract it from the run's duration.
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

client = inngest.Inngest(app_id="bench", is_production=False, api_base_url=SERVER_URL, event_api_base_url=SERVER_URL)
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


flask_app = flask.Flask("bench")
inngest.flask.serve(flask_app, client, [three_steps, sleeper, waiter])


def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
    """Times the whole request inside the app and files it under the run id of the call."""
    started = time.perf_counter()
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    import io

    environ["wsgi.input"] = io.BytesIO(body)
    result = list(flask_app(environ, start_response))
    elapsed = time.perf_counter() - started
    run_id = _run_id(body)
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
