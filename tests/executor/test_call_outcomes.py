"""A worker's call always ends in a recorded attempt that follows the retry policy (PostgreSQL, the
worker's own code): a signature header it cannot read, an answer the database refuses, an app
that drips its answer past the call's deadline."""
from __future__ import annotations

import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from executor.decision import Clock
from executor.leases import LeaseKeeper
from executor.responses import CallView
from executor.run_loop import apply_or_retry, run_call
from runs import creation, lifecycle, pending_calls
from runs.decision_commands import Decision, OpenWait, RecordStep, ScheduleCall
from runs.models import PendingCall, Run, RunStatus, Step, StepAttempt, Wait
from runs.recording import AttemptRow
from tests.factories import make_function

pytestmark = pytest.mark.django_db
KEY = "signkey-test-" + "ab" * 32


class _App(BaseHTTPRequestHandler):
    """Answers 200 with an SDK header and, per test, a signature header or a slow drip."""

    protocol_version = "HTTP/1.1"
    signature = ""
    drip_seconds = 0.0
    calls = 0

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers["Content-Length"]))
        type(self).calls += 1
        self.send_response(200)
        self.send_header("X-Inngest-SDK", "test:v1")
        if self.signature:
            self.send_header("X-Inngest-Signature", self.signature)
        self.send_header("Content-Length", "20")
        self.end_headers()
        try:
            for _ in range(20):
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(self.drip_seconds)
        except OSError:
            pass

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def app() -> Iterator[tuple[type[_App], str]]:
    handler = type("App", (_App,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield handler, f"http://127.0.0.1:{server.server_address[1]}/api/inngest"
    server.shutdown()


def start_run(url: str = "http://127.0.0.1:9/api/inngest", retries: int = 1) -> Run:
    function = make_function(retries=retries)
    function.url = f"{url}?fnId={function.slug}&stepId=step"
    function.save()
    (run,) = creation.create_runs([creation.RunRequest(function, None, [{"name": "test/event", "data": {}}], "")])
    return run


def call_now(run: Run) -> None:
    """Make the run's pending call due (a retry waits its backoff) and let a worker take it."""
    PendingCall.objects.filter(run=run).update(due_at=timezone.now())
    run_call(PendingCall.objects.get(run=run).id)


@override_settings(INNGEST_SIGNING_KEY=KEY)
def test_an_answer_signed_with_a_timestamp_int_cannot_read_is_a_failed_attempt(app) -> None:
    handler, url = app
    handler.signature = "t=²&s=" + "0" * 64  # '²'.isdigit() is True; int('²') raises
    run = start_run(url)
    call_now(run)
    (first,) = StepAttempt.objects.filter(run=run)
    assert first.error == {"name": "InngestErrInvalidResponse",
                           "message": "The app's answer cannot be used: signature_mismatch: the answer is not signed with the signing key"}
    assert PendingCall.objects.get(run=run).attempt == 1  # retried per policy
    call_now(run)
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and "signature_mismatch" in run.output["message"]
    assert handler.calls == 2 == StepAttempt.objects.filter(run=run).count()


@override_settings(INNGEST_CALL_TIMEOUT_SECONDS=1)
def test_an_app_dripping_its_answer_past_the_call_deadline_is_a_failed_attempt(app) -> None:
    handler, url = app
    handler.drip_seconds = 0.3  # 6 s for the whole answer, each byte well within a read timeout
    run = start_run(url)
    started = time.monotonic()
    call_now(run)
    assert time.monotonic() - started < 3
    (attempt,) = StepAttempt.objects.filter(run=run)
    assert attempt.error["message"] == "Unable to reach SDK URL: timeout: the app did not answer in full within 1 s"
    assert PendingCall.objects.get(run=run).attempt == 1


def claimed(run: Run):
    call = pending_calls.claim_call(PendingCall.objects.get(run=run).id, "worker-a", 30)
    lifecycle.start_run(call.run)
    return call


# Committed as the worker commits (autocommit): the plain step is one statement outside any transaction.
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite does not enforce column lengths")
@pytest.mark.parametrize("command", [
    RecordStep("s" * 100, "one", "StepRun", {"data": 1}),  # the one-statement path of a plain step
    OpenWait("w" * 100, "nap", "", "", timezone.now() + timedelta(hours=1), kind="sleep"),  # the transaction path
], ids=["plain step", "transaction"])
@pytest.mark.parametrize("retries, status", [(1, RunStatus.RUNNING), (0, RunStatus.FAILED)])
def test_a_decision_the_database_refuses_is_recorded_as_a_failed_attempt(command, retries: int, status: str) -> None:
    run = start_run(retries=retries)
    call = claimed(run)
    now = timezone.now()
    decision = Decision(commands=(command, ScheduleCall("step", 0, now)), opcode="StepRun", output={"data": 1})
    attempt = AttemptRow(run_id=run.id, step_target="step", attempt=0, status_code=206, opcode="StepRun", started_at=now, ended_at=now)
    view = CallView("step", 0, retries + 1)
    applied = apply_or_retry(call, "worker-a", decision, attempt, view, Clock(now=now, linear_retry_seconds=5), 0)
    assert applied.next_call is None and not applied.is_lost
    (recorded,) = StepAttempt.objects.filter(run=run)
    assert recorded.error["name"] == "InngestErrResponseNotRecorded" and "DataError" in recorded.error["message"]
    assert not Step.objects.filter(run=run).exists() and not Wait.objects.filter(run=run, kind="sleep").exists()
    run.refresh_from_db()
    assert run.status == status
    if status == RunStatus.RUNNING:
        retry = PendingCall.objects.get(run=run)
        assert (retry.attempt, retry.lease_owner) == (1, "") and retry.due_at > now
    else:
        assert run.output == recorded.error


@override_settings(INNGEST_CALL_TIMEOUT_SECONDS=10, INNGEST_LEASE_SECONDS=5)
def test_a_lease_is_renewed_until_its_call_deadline_and_no_longer(monkeypatch: pytest.MonkeyPatch) -> None:
    keeper = LeaseKeeper()
    keeper.hold(1, "worker-a")
    started = time.monotonic()
    monkeypatch.setattr("executor.leases.time.monotonic", lambda: started + 14)
    assert keeper._due_for_renewal()[0] == [(1, "worker-a")]  # within the call timeout + one lease
    keeper.start_call(1)  # a new call on the same row: its own deadline, 15 s from now
    monkeypatch.setattr("executor.leases.time.monotonic", lambda: started + 28)
    assert keeper._due_for_renewal()[0] == [(1, "worker-a")]
    monkeypatch.setattr("executor.leases.time.monotonic", lambda: started + 30)
    assert keeper._due_for_renewal()[0] == []  # let go: the lease runs out and another worker takes the call
    keeper.hold(1, "worker-b")
    keeper.release(1, "worker-a")  # the stuck thread, back at last, does not release the new holder
    assert keeper._due_for_renewal()[0] == [(1, "worker-b")]
    keeper.release(1, "worker-b")
