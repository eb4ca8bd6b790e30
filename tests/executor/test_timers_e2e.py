"""Timers that apps cannot stall, and run-level holds that a re-sync cannot leak, in both modes.

An app of its own (official SDK) whose `hang` step blocks until the test releases it: enough of
them fill every call slot of the workers, as apps that hang do.
"""
from __future__ import annotations

import datetime
import logging
import threading
import uuid
from typing import Iterator

import flask
import inngest
import inngest.flask
import pytest
import requests
from werkzeug.serving import make_server

from tests.sdk_app import free_port
from tests.stacks import DevStack, Stack, wait_for

pytestmark = pytest.mark.e2e

# Call slots of the stacks' workers (conftest): `manage.py dev` runs 8 worker threads, the
# production stack one worker process with a pool of 4.
CALL_SLOTS = {"dev": 8, "production": 4}


class GatedApp:
    """`<id>/hang`: one step that blocks until `release()`; `<id>/sleep`: a 5 s sleep between steps."""

    def __init__(self, server_url: str) -> None:
        self.app_id = f"gated-{uuid.uuid4().hex[:8]}"
        self.client = inngest.Inngest(app_id=self.app_id, is_production=False, api_base_url=server_url,
                                      event_api_base_url=server_url, logger=logging.getLogger("gated-app"))
        self.gate = threading.Event()
        self.entered = 0
        self._lock = threading.Lock()
        port = free_port()
        self.url = f"http://127.0.0.1:{port}/api/inngest"
        flask_app = flask.Flask(self.app_id)
        inngest.flask.serve(flask_app, self.client, [self._hang(), self._sleeper()])
        self._server = make_server("127.0.0.1", port, flask_app, threaded=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def event(self, name: str, **data: object) -> dict:
        return {"name": f"{self.app_id}/{name}", "data": data}

    def release(self) -> None:
        self.gate.set()

    def stop(self) -> None:
        self.gate.set()
        self._server.shutdown()

    def hang(self) -> str:
        with self._lock:
            self.entered += 1
        self.gate.wait(60)
        return "released"

    def _hang(self) -> inngest.Function:
        @self.client.create_function(fn_id="hang", trigger=inngest.TriggerEvent(event=f"{self.app_id}/hang"), retries=0)
        def hang(ctx: inngest.ContextSync) -> dict:
            return {"step": ctx.step.run("hang", self.hang), "data": ctx.event.data}

        return hang

    def _sleeper(self) -> inngest.Function:
        @self.client.create_function(fn_id="sleeper", trigger=inngest.TriggerEvent(event=f"{self.app_id}/sleep"), retries=0)
        def sleeper(ctx: inngest.ContextSync) -> str:
            ctx.step.sleep("nap", datetime.timedelta(seconds=5))
            return ctx.step.run("after", lambda: "woke")

        return sleeper


@pytest.fixture
def gated(stack: tuple) -> Iterator[tuple[Stack, GatedApp]]:
    server, _ = stack
    app = GatedApp(server.base_url)
    answer = requests.put(app.url, timeout=10)  # the app registers itself, as on a sync from the UI
    assert answer.status_code == 200 and "error" not in answer.json(), answer.text
    try:
        yield server, app
    finally:
        app.stop()


def test_sleeps_wake_while_hanging_apps_hold_every_call_slot(gated: tuple[Stack, GatedApp]) -> None:
    server, app = gated
    slots = CALL_SLOTS["dev" if isinstance(server, DevStack) else "production"]
    (sleeper,) = server.wait_for_runs(server.send(app.event("sleep"))[0])
    wait_for(lambda: server.query("SELECT count(*) FROM runs_wait WHERE run_id = %s AND kind = 'sleep'",
                                  [sleeper["run_id"]])[0][0] == 1, what="the sleep to be recorded")
    hanging = server.send([app.event("hang", i=i) for i in range(slots + 2)])
    wait_for(lambda: app.entered == slots, timeout=20, what=f"{slots} hanging calls")

    def nap_recorded() -> bool:
        return bool(server.query("SELECT count(*) FROM runs_step WHERE run_id = %s AND op = 'Sleep'", [sleeper["run_id"]])[0][0])

    assert not nap_recorded(), "the sleep ended before the call slots were full: nothing was tested"
    # Every call slot is held by an app that does not answer, and the sleep ends on time anyway.
    wait_for(nap_recorded, timeout=15, what="the sleep to end while every call slot hangs")
    assert app.entered == slots and not app.gate.is_set()

    app.release()
    ended = [server.wait_for_end(server.wait_for_runs(internal_id)[0]["run_id"], timeout=60) for internal_id in hanging]
    assert [run["status"] for run in ended] == ["Completed"] * len(hanging)
    run = server.wait_for_end(sleeper["run_id"], timeout=30)
    assert (run["status"], run["output"]) == ("Completed", "woke")


def register_held(server: Stack, app: GatedApp, key: str) -> None:
    """A sync as the Go SDK sends it: `concurrency.fn`, one run at a time per key, held from the
    run's start to its end. It runs the app's `hang` function. The app URL it gives does not
    answer, so dev mode's polling never replaces this configuration with the app's own."""
    slug = f"{app.app_id}-held"
    body = {
        "url": f"http://127.0.0.1:{free_port()}/api/inngest", "v": "0.1", "deployType": "ping", "sdk": "go:v0.11.0",
        "framework": "", "appName": f"{app.app_id}-go",
        "functions": [{
            "id": slug, "name": "held", "triggers": [{"event": f"{app.app_id}/held"}],
            "concurrency": {"fn": [{"limit": 1, "key": key}]},
            "steps": {"step": {"id": "step", "name": "step", "retries": {"attempts": 0},
                               "runtime": {"type": "http", "url": f"{app.url}?fnId={app.app_id}-hang&stepId=step"}}},
        }],
    }
    answer = requests.post(f"{server.base_url}/fn/register", json=body, headers=server.headers, timeout=10)
    assert answer.status_code == 200, answer.text


def test_a_run_level_hold_is_given_back_under_the_key_it_was_taken_with(gated: tuple[Stack, GatedApp]) -> None:
    server, app = gated
    register_held(server, app, "event.data.a")
    (first,) = server.wait_for_runs(server.send({"name": f"{app.app_id}/held", "data": {"a": "x"}})[0])
    wait_for(lambda: app.entered == 1, what="the first run to hold its slot")

    # Re-synced with another key, which evaluates to the same value for the next run.
    register_held(server, app, "event.data.b")
    (second,) = server.wait_for_runs(server.send({"name": f"{app.app_id}/held", "data": {"b": "x"}})[0])

    def parked_on() -> str:
        rows = server.query("SELECT parked_on FROM runs_pendingcall WHERE run_id = %s", [second["run_id"]])
        return rows[0][0] if rows else ""

    wait_for(parked_on, what="the second run to wait for the first one's slot")
    assert app.entered == 1

    app.release()
    assert server.wait_for_end(first["run_id"])["status"] == "Completed"
    # The first run gave back the key it took ("x" under event.data.a), so the second starts now,
    # not when the hold would have expired (a day).
    run = server.wait_for_end(second["run_id"], timeout=20)
    assert run["status"] == "Completed" and run["output"]["data"] == {"b": "x"}
    assert app.entered == 2
