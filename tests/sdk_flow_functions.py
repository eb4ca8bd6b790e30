"""The SDK app's flow-control functions (concurrency, throttle, rate limit, debounce, batching,
priority, idempotency, singleton). What they saw is kept on the app for the tests to check."""
from __future__ import annotations

import collections
import datetime
import json
import time
from typing import TYPE_CHECKING

import flask
import inngest

if TYPE_CHECKING:
    from tests.sdk_app import SdkApp

LIMIT = 2


class InFlight:
    """How many step bodies run at once, per key, and the most ever seen."""

    def __init__(self) -> None:
        self.now: collections.Counter[str] = collections.Counter()
        self.peak: collections.Counter[str] = collections.Counter()

    def work(self, app: "SdkApp", keys: tuple[str, ...], seconds: float) -> float:
        with app.lock:
            for key in keys:
                self.now[key] += 1
                self.peak[key] = max(self.peak[key], self.now[key])
        started = time.time()
        time.sleep(seconds)
        with app.lock:
            for key in keys:
                self.now[key] -= 1
        return started


def flow_functions(app: "SdkApp") -> list[inngest.Function]:
    client = app.client
    app.in_flight = InFlight()
    seconds = datetime.timedelta(seconds=1)

    @client.create_function(fn_id="limited", trigger=inngest.TriggerEvent(event="test/limited"),
                            concurrency=[inngest.Concurrency(limit=LIMIT)])
    def limited(ctx: inngest.ContextSync) -> float:
        return ctx.step.run("work", lambda: app.in_flight.work(app, ("limited",), ctx.event.data["seconds"]))

    @client.create_function(fn_id="keyed-limit", trigger=inngest.TriggerEvent(event="test/keyed-limit"),
                            concurrency=[inngest.Concurrency(limit=1, key="event.data.user")])
    def keyed_limit(ctx: inngest.ContextSync) -> float:
        keys = (f"keyed:{ctx.event.data['user']}", f"keyed:{ctx.event.data['batch']}")
        return ctx.step.run("work", lambda: app.in_flight.work(app, keys, ctx.event.data["seconds"]))

    @client.create_function(fn_id="ordered", trigger=inngest.TriggerEvent(event="test/ordered"),
                            concurrency=[inngest.Concurrency(limit=1)], priority=inngest.Priority(run="event.data.priority"))
    def ordered(ctx: inngest.ContextSync) -> str:
        def start() -> str:
            app.seen[f"ordered:{ctx.event.data['batch']}"].append(ctx.event.data["name"])
            time.sleep(ctx.event.data.get("seconds", 0.05))
            return ctx.event.data["name"]

        return ctx.step.run("start", start)

    @client.create_function(fn_id="throttled", trigger=inngest.TriggerEvent(event="test/throttled"),
                            throttle=inngest.Throttle(limit=2, period=2 * seconds, burst=1, key="event.data.group"))
    def throttled(ctx: inngest.ContextSync) -> float:
        return ctx.step.run("started", time.time)

    @client.create_function(fn_id="rate-limited", trigger=inngest.TriggerEvent(event="test/rate-limited"),
                            rate_limit=inngest.RateLimit(limit=1, period=60 * seconds, key="event.data.user"))
    def rate_limited(ctx: inngest.ContextSync) -> str:
        return ctx.event.data["user"]

    @client.create_function(fn_id="debounced", trigger=inngest.TriggerEvent(event="test/debounced"),
                            debounce=inngest.Debounce(period=seconds, key="event.data.user", timeout=2 * seconds))
    def debounced(ctx: inngest.ContextSync) -> dict:
        return {"n": ctx.event.data["n"], "events": len(ctx.events)}

    @client.create_function(fn_id="batched", trigger=inngest.TriggerEvent(event="test/batched"),
                            batch_events=inngest.Batch(max_size=3, timeout=2 * seconds, key="event.data.tenant"))
    def batched(ctx: inngest.ContextSync) -> list:
        return [event.data["n"] for event in ctx.events]

    @client.create_function(fn_id="batched-large", trigger=inngest.TriggerEvent(event="test/batched-large"),
                            batch_events=inngest.Batch(max_size=3, timeout=5 * seconds))
    def batched_large(ctx: inngest.ContextSync) -> dict:
        blob = ctx.step.run("blob", lambda: "y" * 50_000)
        return {"sizes": [len(event.data["blob"]) for event in ctx.events], "blob": len(blob)}

    @client.create_function(fn_id="idempotent", trigger=inngest.TriggerEvent(event="test/idempotent"),
                            idempotency="event.data.order")
    def idempotent(ctx: inngest.ContextSync) -> str:
        return ctx.event.data["order"]

    @client.create_function(fn_id="singleton-skip", trigger=inngest.TriggerEvent(event="test/singleton-skip"),
                            singleton=inngest.Singleton(key="event.data.user", mode="skip"))
    def singleton_skip(ctx: inngest.ContextSync) -> int:
        ctx.step.sleep("hold", datetime.timedelta(seconds=ctx.event.data["seconds"]))
        return ctx.event.data["n"]

    @client.create_function(fn_id="singleton-cancel", trigger=inngest.TriggerEvent(event="test/singleton-cancel"),
                            singleton=inngest.Singleton(key="event.data.user", mode="cancel"))
    def singleton_cancel(ctx: inngest.ContextSync) -> int:
        ctx.step.sleep("hold", datetime.timedelta(seconds=ctx.event.data["seconds"]))
        return ctx.event.data["n"]

    return [limited, keyed_limit, ordered, throttled, rate_limited, debounced, batched, batched_large,
            idempotent, singleton_skip, singleton_cancel]


def record_call_bodies(app: "SdkApp", flask_app: flask.Flask) -> None:
    """Keep, per function, whether each call came with `use_api` and how big its body was."""

    @flask_app.before_request
    def record() -> None:
        fn_id = flask.request.args.get("fnId", "")
        if flask.request.method == "POST" and fn_id.endswith("batched-large"):
            body = json.loads(flask.request.get_data() or b"{}")
            app.seen["bodies:batched-large"].append({"use_api": body.get("use_api"), "bytes": flask.request.content_length})
