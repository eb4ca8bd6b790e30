"""The events a run's end emits (protocol.md §5), and the failure's `error` as Inngest shapes it:
its driver's reason ("invalid status code: 500") beside the name, message and stack of the body."""
from __future__ import annotations

import pytest

from events.system import CANCELLED, FAILED, FINISHED, failure_error, run_ended_events

TRIGGER = {"name": "test/event", "data": {"foo": 1}, "id": "e1", "ts": 1, "meta": {"sessions": {"org": "acme"}}}
PY_ERROR = {"code": "unknown", "message": "intentional failure", "name": "MyError", "stack": "Traceback …"}


@pytest.mark.parametrize("output, reason, expected", [
    # The Python SDK's 500 body, as inngest-py's own on_failure test expects it.
    (PY_ERROR, "invalid status code: 500",
     {"error": "invalid status code: 500", "name": "MyError", "message": "intentional failure", "stack": "Traceback …"}),
    # An `error` string in the body wins over the reason.
    ({"error": "bad thing", "name": "E", "message": "m"}, "invalid status code: 500", {"error": "bad thing", "name": "E", "message": "m"}),
    # A body wrapping the error (as an object, or as JSON text) is unwrapped.
    ({"error": {"name": "E", "message": "m", "cause": {"x": 1}}}, "NonRetriableError",
     {"error": "NonRetriableError", "name": "E", "message": "m", "cause": {"x": 1}}),
    ({"body": '{"name": "E", "message": "m"}'}, "invalid status code: 502", {"error": "invalid status code: 502", "name": "E", "message": "m"}),
    # No answer at all: the transport's error is both error and message.
    (None, "connection refused", {"error": "connection refused", "name": "Error", "message": "connection refused"}),
    # Plain text is the message.
    ("it broke", "invalid status code: 500", {"error": "invalid status code: 500", "name": "Error", "message": "it broke"}),
    # A failure of the server's own making (a limit, a bad op): its message is the error.
    ({"name": "InngestErrFunctionOverflowed", "message": "too many ops"}, "",
     {"error": "too many ops", "name": "InngestErrFunctionOverflowed", "message": "too many ops"}),
    # Nothing known at all: Inngest's default words.
    ({}, "", {"error": "Function execution error", "name": "Error", "message": "Function execution error"}),
], ids=["python sdk 500", "error field", "wrapped object", "wrapped text", "no answer", "text", "server's own", "nothing"])
def test_the_failure_error_reads_the_body_and_the_reason(output, reason, expected) -> None:
    assert failure_error(output, reason) == expected


def test_a_failed_run_emits_finished_and_failed_with_the_shaped_error() -> None:
    finished, failed = run_ended_events("01RUN", "app-fn", [TRIGGER], "failed", PY_ERROR, "invalid status code: 500")
    assert (finished.name, failed.name, failed.event_id) == (FINISHED, FAILED, "01RUN")
    data = failed.data
    assert data["error"]["error"] == "invalid status code: 500" and data["result"] == PY_ERROR
    assert data["event"] == TRIGGER and data["events"] == [TRIGGER]  # meta included: it is the event as sent
    assert data["function_id"] == "app-fn" and data["run_id"] == "01RUN"


def test_completed_and_cancelled_runs_carry_no_error() -> None:
    (finished,) = run_ended_events("01RUN", "app-fn", [TRIGGER], "completed", {"ok": 1})
    assert finished.data["result"] == {"ok": 1} and "error" not in finished.data
    finished, cancelled = run_ended_events("01RUN", "app-fn", [TRIGGER], "cancelled", None)
    assert cancelled.name == CANCELLED and "error" not in cancelled.data
