"""A rerun from a step (runs/reruns.py): its first call already carries the steps kept from the
run it repeats, so the SDK skips them (the worker's own code against a recording HTTP app)."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest
from django.utils import timezone

from executor.run_loop import run_call
from runs import creation, reruns
from runs.models import PendingCall, Run, RunStatus, Step
from tests.factories import make_function

pytestmark = pytest.mark.django_db


class _Recorder(BaseHTTPRequestHandler):
    """Keeps each call's body and answers that the function returned {"ok": true}."""

    protocol_version = "HTTP/1.1"
    bodies: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        type(self).bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        answer = b'{"ok": true}'
        self.send_response(200)
        self.send_header("X-Inngest-SDK", "test:v1")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def app_url() -> Iterator[tuple[type[_Recorder], str]]:
    handler = type("Recorder", (_Recorder,), {"bodies": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield handler, f"http://127.0.0.1:{server.server_address[1]}/api/inngest"
    server.shutdown()


def test_a_rerun_from_a_step_sends_the_steps_before_it_on_its_first_call(app_url) -> None:
    handler, url = app_url
    function = make_function()
    function.url = f"{url}?fnId={function.slug}&stepId=step"
    function.save()
    (run,) = creation.create_runs([creation.RunRequest(function, None, [{"name": "test/event", "data": {}}], "")])
    PendingCall.objects.filter(run=run).delete()
    Run.objects.filter(id=run.id).update(status=RunStatus.COMPLETED, ended_at=timezone.now())
    for position, step_id in enumerate(["h1", "h2"]):
        Step.objects.create(run=run, step_id=step_id, name=step_id, op="StepRun", output={"data": position}, position=position)
    again = reruns.rerun(Run.objects.get(id=run.id), from_step_id="h2")
    run_call(PendingCall.objects.get(run=again).id)
    (body,) = handler.bodies
    assert body["steps"] == {"h1": {"data": 0}} and body["ctx"]["stack"]["stack"] == ["h1"]
    again.refresh_from_db()
    assert (again.status, again.output) == (RunStatus.COMPLETED, {"ok": True})
