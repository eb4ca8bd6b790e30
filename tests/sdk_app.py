"""An app written with the official `inngest` SDK, served inside the test run (Flask on a thread).

Each test talks to its own server (dev or production stack); `SdkApp` builds one app per
server, with functions that exercise the core protocol. What the functions saw is kept in
`SdkApp.seen` so tests can assert on calls that happened inside the app.
"""
from __future__ import annotations

import collections
import datetime
import logging
import os
import socket
import threading
import time
from typing import Any, Callable

import flask
import inngest
import inngest.flask
from werkzeug.serving import make_server

from tests.sdk_ai_functions import ai_functions
from tests.sdk_expression_functions import expression_functions
from tests.sdk_flow_functions import flow_functions, record_call_bodies

logging.getLogger("werkzeug").setLevel(logging.ERROR)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _client(app_id: str, server_url: str, signing_key: str | None, fallback: str | None, event_key: str | None) -> inngest.Inngest:
    """The SDK's client; with a signing key it runs in cloud mode: it signs and verifies, as in production.

    The SDK reads its fallback key only from INNGEST_SIGNING_KEY_FALLBACK, at construction.
    """
    saved = os.environ.pop("INNGEST_SIGNING_KEY_FALLBACK", None)
    if fallback:
        os.environ["INNGEST_SIGNING_KEY_FALLBACK"] = fallback
    try:
        return inngest.Inngest(
            app_id=app_id, is_production=signing_key is not None, api_base_url=server_url, event_api_base_url=server_url,
            signing_key=signing_key, event_key=event_key, logger=logging.getLogger("sdk-app"),
        )
    finally:
        os.environ.pop("INNGEST_SIGNING_KEY_FALLBACK", None)
        if saved is not None:
            os.environ["INNGEST_SIGNING_KEY_FALLBACK"] = saved


class SdkApp:
    """The SDK app and its HTTP server. `url` is what the server syncs and calls."""

    def __init__(self, app_id: str, server_url: str, signing_key: str | None = None,
                 signing_key_fallback: str | None = None, event_key: str | None = None) -> None:
        self.app_id = app_id
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/api/inngest"
        # With a signing key the app runs in cloud mode: it signs and verifies, as in production.
        self.client = _client(app_id, server_url, signing_key, signing_key_fallback, event_key)
        self.counters: collections.Counter[str] = collections.Counter()
        self.seen: collections.defaultdict[str, list] = collections.defaultdict(list)
        self.slow_step_started = threading.Event()
        self.lock = threading.Lock()
        flask_app = flask.Flask(app_id)
        record_call_bodies(self, flask_app)
        inngest.flask.serve(flask_app, self.client, self._functions())
        self._server = make_server("127.0.0.1", self.port, flask_app, threaded=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()

    def count(self, key: str) -> int:
        with self.lock:
            self.counters[key] += 1
            return self.counters[key]

    def _functions(self) -> list[inngest.Function]:
        return [
            self._three_steps(), self._flaky(), self._non_retriable(), self._retry_after(),
            self._wildcard(), self._expression(), self._slow_step(), self._always_fails(), self._waits(),
            self._sleeps(), self._invokee(), self._invoker(), self._cancellable(), self._parallel_groups(),
            self._parallel_five(), self._cron(), self._times_out(), self._parallel_mixed(),
            self._repeated_steps(), self._failing_step(), self._race_groups(), self._odd_values(), self._call_ids(),
            *flow_functions(self),
            *expression_functions(self.client), *ai_functions(self.client),
        ]

    @property
    def function_count(self) -> int:
        """Functions the SDK registers: an on_failure handler is a function of its own."""
        return len(self._functions()) + 1

    def _three_steps(self) -> inngest.Function:
        @self.client.create_function(fn_id="three-steps", trigger=inngest.TriggerEvent(event="test/three-steps"))
        def three_steps(ctx: inngest.ContextSync) -> dict:
            one = ctx.step.run("one", lambda: ctx.event.data["start"] + 1)
            two = ctx.step.run("two", lambda: one * 10)
            three = ctx.step.run("three", lambda: {"one": one, "two": two})
            return {"result": three, "event_id": ctx.event.id}

        return three_steps

    def _flaky(self) -> inngest.Function:
        @self.client.create_function(fn_id="flaky", trigger=inngest.TriggerEvent(event="test/flaky"), retries=3)
        def flaky(ctx: inngest.ContextSync) -> str:
            def attempt() -> str:
                if self.count(f"flaky:{ctx.run_id}") <= 2:
                    raise ValueError("not yet")
                return "third time lucky"

            return ctx.step.run("flaky-step", attempt)

        return flaky

    def _non_retriable(self) -> inngest.Function:
        @self.client.create_function(fn_id="non-retriable", trigger=inngest.TriggerEvent(event="test/non-retriable"), retries=3)
        def non_retriable(ctx: inngest.ContextSync) -> None:
            self.count(f"non-retriable:{ctx.run_id}")
            raise inngest.NonRetriableError("give up now")

        return non_retriable

    def _retry_after(self) -> inngest.Function:
        @self.client.create_function(fn_id="retry-after", trigger=inngest.TriggerEvent(event="test/retry-after"), retries=2)
        def retry_after(ctx: inngest.ContextSync) -> str:
            with self.lock:
                self.seen[f"retry-after:{ctx.run_id}"].append(time.time())
            if ctx.attempt == 0:
                raise inngest.RetryAfterError("later please", datetime.timedelta(seconds=2))
            return "done after waiting"

        return retry_after

    def _wildcard(self) -> inngest.Function:
        @self.client.create_function(fn_id="wildcard", trigger=inngest.TriggerEvent(event="test/wild.*"))
        def wildcard(ctx: inngest.ContextSync) -> str:
            return ctx.event.name

        return wildcard

    def _expression(self) -> inngest.Function:
        trigger = inngest.TriggerEvent(event="test/expression", expression="event.data.plan == 'pro'")

        @self.client.create_function(fn_id="expression", trigger=trigger)
        def expression(ctx: inngest.ContextSync) -> str:
            return ctx.event.data["plan"]

        return expression

    def _always_fails(self) -> inngest.Function:
        def on_failure(ctx: inngest.ContextSync) -> str:
            with self.lock:
                self.seen[f"on-failure:{ctx.event.data['run_id']}"].append(ctx.event.data)
            return "handled"

        trigger = inngest.TriggerEvent(event="test/always-fails")

        @self.client.create_function(fn_id="always-fails", trigger=trigger, retries=0, on_failure=on_failure)
        def always_fails(ctx: inngest.ContextSync) -> None:
            raise ValueError(f"boom {ctx.event.data['tag']}")

        return always_fails

    def _waits(self) -> inngest.Function:
        @self.client.create_function(fn_id="waits", trigger=inngest.TriggerEvent(event="test/waits"))
        def waits(ctx: inngest.ContextSync) -> dict:
            before = ctx.step.run("before", lambda: "before")
            approval = ctx.step.wait_for_event(
                "approval", event="test/approve", if_exp="event.data.order == async.data.order",
                timeout=datetime.timedelta(seconds=ctx.event.data.get("timeout", 30)),
            )
            return {"before": before, "approval": approval.data if approval else None}

        return waits

    def _sleeps(self) -> inngest.Function:
        @self.client.create_function(fn_id="sleeps", trigger=inngest.TriggerEvent(event="test/sleeps"))
        def sleeps(ctx: inngest.ContextSync) -> dict:
            started = ctx.step.run("started", time.time)
            ctx.step.sleep("nap", datetime.timedelta(seconds=ctx.event.data.get("seconds", 1)))
            woke = ctx.step.run("woke", time.time)
            return {"slept": woke - started}

        return sleeps

    def _invokee(self) -> inngest.Function:
        @self.client.create_function(fn_id="invokee", trigger=inngest.TriggerEvent(event="test/never"))
        def invokee(ctx: inngest.ContextSync) -> dict:
            if ctx.event.data.get("fail"):
                raise inngest.NonRetriableError(f"child refused {ctx.event.data['value']}")
            if ctx.event.data.get("sleep"):
                ctx.step.sleep("dawdle", datetime.timedelta(seconds=ctx.event.data["sleep"]))
            return {"doubled": ctx.event.data["value"] * 2}

        return invokee

    def _invoker(self) -> inngest.Function:
        @self.client.create_function(fn_id="invoker", trigger=inngest.TriggerEvent(event="test/invoker"), retries=0)
        def invoker(ctx: inngest.ContextSync) -> dict:
            data = ctx.event.data
            timeout = datetime.timedelta(seconds=data["timeout"]) if data.get("timeout") else None
            try:
                result = ctx.step.invoke_by_id("call-child", function_id="invokee", data=dict(data), timeout=timeout)
            except inngest.StepError as error:
                return {"error": {"name": error.name, "message": error.message}}
            return {"child": result}

        return invoker

    def _cancellable(self) -> inngest.Function:
        cancel = inngest.Cancel(event="test/cancel-order", if_exp="event.data.order == async.data.order",
                                timeout=datetime.timedelta(minutes=5))

        @self.client.create_function(fn_id="cancellable", trigger=inngest.TriggerEvent(event="test/cancellable"), cancel=[cancel])
        def cancellable(ctx: inngest.ContextSync) -> str:
            ctx.step.sleep("long-nap", datetime.timedelta(seconds=ctx.event.data.get("seconds", 30)))
            return "woke up"

        return cancellable

    def _parallel_groups(self) -> inngest.Function:
        @self.client.create_function(fn_id="parallel-groups", trigger=inngest.TriggerEvent(event="test/parallel-groups"))
        def parallel_groups(ctx: inngest.ContextSync) -> list:
            def group(name: str) -> Callable[[], list]:
                def sequence() -> list:
                    first = ctx.step.run(f"{name}.1", lambda: f"{name}1")
                    second = ctx.step.run(f"{name}.2", lambda: f"{name}2")
                    return [first, second]

                return sequence

            return list(ctx.group.parallel((group("a"), group("b"))))

        return parallel_groups

    def _parallel_five(self) -> inngest.Function:
        @self.client.create_function(fn_id="parallel-five", trigger=inngest.TriggerEvent(event="test/parallel-five"))
        def parallel_five(ctx: inngest.ContextSync) -> dict:
            def square(i: int) -> Callable[[], int]:
                return lambda: ctx.step.run(f"square-{i}", lambda: i * i)

            squares = list(ctx.group.parallel(tuple(square(i) for i in range(5))))
            after = ctx.step.run("after", lambda: sum(squares))
            return {"squares": squares, "sum": after}

        return parallel_five

    def _cron(self) -> inngest.Function:
        @self.client.create_function(fn_id="every-minute", trigger=inngest.TriggerCron(cron="TZ=UTC * * * * *"))
        def every_minute(ctx: inngest.ContextSync) -> dict:
            return {"scheduledAt": ctx.event.data["scheduledAt"], "name": ctx.event.name}

        return every_minute

    def _times_out(self) -> inngest.Function:
        timeouts = inngest.Timeouts(finish=datetime.timedelta(seconds=2))

        @self.client.create_function(fn_id="times-out", trigger=inngest.TriggerEvent(event="test/times-out"), timeouts=timeouts)
        def times_out(ctx: inngest.ContextSync) -> str:
            ctx.step.sleep("too-long", datetime.timedelta(seconds=30))
            return "finished after all"

        return times_out

    def _parallel_mixed(self) -> inngest.Function:
        @self.client.create_function(fn_id="parallel-mixed", trigger=inngest.TriggerEvent(event="test/parallel-mixed"))
        def parallel_mixed(ctx: inngest.ContextSync) -> list:
            results = ctx.group.parallel((
                lambda: ctx.step.invoke_by_id("child", function_id="invokee", data={"value": 4}),
                lambda: ctx.step.run("local", lambda: "local"),
                lambda: ctx.step.send_event("send", [inngest.Event(name="test/parallel-sent", data={"from": ctx.run_id})]),
            ))
            after = ctx.step.run("after", lambda: "after")
            return [results[0], results[1], len(results[2]), after]

        return parallel_mixed

    def _repeated_steps(self) -> inngest.Function:
        @self.client.create_function(fn_id="repeated-steps", trigger=inngest.TriggerEvent(event="test/repeated-steps"))
        def repeated_steps(ctx: inngest.ContextSync) -> list:
            return [ctx.step.run("foo", lambda i=i: i) for i in range(2)]  # the same step id twice

        return repeated_steps

    def _failing_step(self) -> inngest.Function:
        @self.client.create_function(fn_id="failing-step", trigger=inngest.TriggerEvent(event="test/failing-step"), retries=0)
        def failing_step(ctx: inngest.ContextSync) -> None:
            def explode() -> None:
                raise ValueError("the step gave up")

            ctx.step.run("explode", explode)

        return failing_step

    def _race_groups(self) -> inngest.Function:
        @self.client.create_function(fn_id="race-groups", trigger=inngest.TriggerEvent(event="test/race-groups"))
        def race_groups(ctx: inngest.ContextSync) -> list:
            def fast() -> list:
                return [ctx.step.run("fast.1", lambda: "f1"), ctx.step.run("fast.2", lambda: "f2")]

            def slow() -> list:
                def first() -> str:
                    time.sleep(ctx.event.data.get("seconds", 1.5))
                    return "s1"

                return [ctx.step.run("slow.1", first), ctx.step.run("slow.2", lambda: "s2")]

            return list(ctx.group.parallel((fast, slow), parallel_mode=inngest.ParallelMode.RACE))

        return race_groups

    def _odd_values(self) -> inngest.Function:
        """A step returning what PostgreSQL's jsonb cannot hold; the function returns the memo it got back."""
        values = {"nul": {"s": "nul\u0000byte"}, "surrogate": {"s": "half \ud800 pair"},
                  "nan": {"nan": float("nan"), "inf": float("inf")}}

        @self.client.create_function(fn_id="odd-values", trigger=inngest.TriggerEvent(event="test/odd-values"), retries=1)
        def odd_values(ctx: inngest.ContextSync) -> object:
            def odd() -> object:
                self.count(f"odd:{ctx.run_id}")
                return values[ctx.event.data["kind"]]

            memo = ctx.step.run("odd", odd)
            with self.lock:
                self.seen[f"odd:{ctx.run_id}"].append(memo)
            return memo

        return odd_values

    def _call_ids(self) -> inngest.Function:
        """Records the request and job ids of every call: a step, then a discovery that fails once."""
        @self.client.create_function(fn_id="call-ids", trigger=inngest.TriggerEvent(event="test/call-ids"), retries=1)
        def call_ids(ctx: inngest.ContextSync) -> str:
            with self.lock:
                self.seen[f"call-ids:{ctx.run_id}"].append((ctx.attempt, ctx.request_id, ctx.job_id))
            ctx.step.run("one", lambda: 1)
            if ctx.attempt == 0:
                raise ValueError("once more")
            return "done"

        return call_ids

    def _slow_step(self) -> inngest.Function:
        cancel = inngest.Cancel(event="test/stop-slow", if_exp="event.data.tag == async.data.tag")

        @self.client.create_function(fn_id="slow-step", trigger=inngest.TriggerEvent(event="test/slow-step"), cancel=[cancel])
        def slow_step(ctx: inngest.ContextSync) -> dict:
            def slow() -> str:
                self.count(f"slow:{ctx.run_id}")
                self.slow_step_started.set()
                time.sleep(ctx.event.data.get("seconds", 2))
                return "slept"

            first = ctx.step.run("before", lambda: "before")
            second = ctx.step.run("slow", slow)
            third = ctx.step.run("after", lambda: "after")
            return {"steps": [first, second, third]}

        return slow_step


def sync(app: SdkApp) -> None:
    """Ask the app to sync, as the dev server UI or `--urls` would: a plain PUT."""
    import requests

    answer = requests.put(app.url, timeout=10)
    assert answer.status_code == 200, answer.text
    body: Any = answer.json()
    assert "error" not in body, body
