"""The decision table: one case per status code and opcode. Pure: no database, no HTTP."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from core.json_text import dump_json
from executor.decision import Clock, decide
from executor.responses import CallView, SdkResponse
from runs.decision_commands import FinishRun, InvokeFunction, OpenWait, PlanParallel, RecordStep, ScheduleCall

NOW = datetime(2026, 11, 24, 12, 0, 0, tzinfo=timezone.utc)
CLOCK = Clock(now=NOW, jitter_fraction=0.5)
FIRST = CallView(step_target="step", attempt=0, max_attempts=5)
LAST = CallView(step_target="step", attempt=4, max_attempts=5)


def sdk(status: int | None, body: object = None, **fields: object) -> SdkResponse:
    return SdkResponse(status=status, body=body, has_sdk_header=status is not None, **fields)


def op(opcode: str, **fields: object) -> dict:
    return {"op": opcode, "id": "hashed-id", "name": "user-id", "displayName": "user-id", **fields}


def discovery(at: datetime = NOW) -> ScheduleCall:
    return ScheduleCall("step", 0, at)


CASES = [
    # (case id, call, response, expected commands)
    ("200 completes the run with the body", FIRST, sdk(200, {"ok": 1}), [FinishRun("completed", {"ok": 1})]),
    ("204 is a success too", FIRST, sdk(204, None), [FinishRun("completed", None)]),
    ("206 StepRun memoizes data and asks for discovery", FIRST, sdk(206, [op("StepRun", data={"a": 1})]),
     [RecordStep("hashed-id", "user-id", "StepRun", {"data": {"a": 1}}), discovery()]),
    ("206 StepRun with null data memoizes {data: null}", FIRST, sdk(206, [op("StepRun", data=None)]),
     [RecordStep("hashed-id", "user-id", "StepRun", {"data": None}), discovery()]),
    ("206 legacy Step memoizes data verbatim", FIRST, sdk(206, [op("Step", data=[1, 2])]),
     [RecordStep("hashed-id", "user-id", "Step", [1, 2]), discovery()]),
    ("206 op names are case-insensitive", FIRST, sdk(206, [op("steprun", data=3)]),
     [RecordStep("hashed-id", "user-id", "StepRun", {"data": 3}), discovery()]),
    ("206 StepError with attempts left retries the same call with backoff", FIRST,
     sdk(206, [op("StepError", error={"name": "E", "message": "m"})]),
     [ScheduleCall("step", 1, NOW + timedelta(seconds=15 + 15))]),
    ("206 StepError on the last attempt memoizes the error", LAST,
     sdk(206, [op("StepError", error={"name": "E", "message": "m"})]),
     [RecordStep("hashed-id", "user-id", "StepFailed", {"error": {"name": "E", "message": "m"}}), discovery()]),
    ("206 StepError with X-Inngest-No-Retry memoizes the error at once", FIRST,
     sdk(206, [op("StepError", error={"name": "E", "message": "m"})], is_no_retry=True),
     [RecordStep("hashed-id", "user-id", "StepFailed", {"error": {"name": "E", "message": "m"}}), discovery()]),
    ("206 StepError honours Retry-After", FIRST,
     sdk(206, [op("StepError", error={"name": "E", "message": "m"})], retry_after="2026-11-24T12:00:05.000Z"),
     [ScheduleCall("step", 1, NOW + timedelta(seconds=5))]),
    ("206 StepFailed memoizes the error", FIRST, sdk(206, [op("StepFailed", error={"name": "E", "message": "m"})]),
     [RecordStep("hashed-id", "user-id", "StepFailed", {"error": {"name": "E", "message": "m"}}), discovery()]),
    ("206 StepPlanned calls the planned step", FIRST, sdk(206, [op("StepPlanned")]),
     [ScheduleCall("hashed-id", 0, NOW)]),
    ("206 Sleep waits until the given time", FIRST,
     sdk(206, [op("Sleep", name="2026-11-24T12:00:30.000Z", displayName="nap")]),
     [OpenWait("hashed-id", "nap", "", "", NOW + timedelta(seconds=30), kind="sleep")]),
    ("206 Sleep takes a duration in opts", FIRST, sdk(206, [op("Sleep", opts={"duration": "1m"}, displayName="nap")]),
     [OpenWait("hashed-id", "nap", "", "", NOW + timedelta(minutes=1), kind="sleep")]),
    ("206 Sleep in the past wakes at once", FIRST, sdk(206, [op("Sleep", name="2020-01-01T00:00:00Z", displayName="nap")]),
     [OpenWait("hashed-id", "nap", "", "", NOW, kind="sleep")]),
    ("206 Sleep of more than 366 days fails the run", FIRST, sdk(206, [op("Sleep", opts={"duration": "400d"})]),
     [FinishRun("failed", {"name": "InngestErrTimeoutTooLong", "message": "A sleep may last at most 366 days."})]),
    ("206 WaitForEvent opens a wait with its name, condition and timeout", FIRST,
     sdk(206, [op("WaitForEvent", name="app/approved", displayName="approval", opts={"if": "event.data.a == async.data.a", "timeout": "1h"})]),
     [OpenWait("hashed-id", "approval", "app/approved", "event.data.a == async.data.a", NOW + timedelta(hours=1))]),
    ("206 WaitForEvent takes the event name from opts (JS)", FIRST,
     sdk(206, [op("WaitForEvent", displayName="w", opts={"event": "app/x", "timeout": "2026-11-24T13:00:00Z"})]),
     [OpenWait("hashed-id", "w", "app/x", "", NOW + timedelta(hours=1))]),
    ("206 WaitForEvent with an invalid condition fails the run", FIRST,
     sdk(206, [op("WaitForEvent", name="app/x", opts={"if": "event.data ==", "timeout": "1h"})]),
     [FinishRun("failed", {"name": "InngestErrInvalidWait",
                           "message": "Invalid waitForEvent: invalid expression 'event.data ==': event.data =="})]),
    ("206 WaitForEvent whose condition nests 300 parentheses fails the run", FIRST,
     sdk(206, [op("WaitForEvent", name="app/x", opts={"if": "(" * 300 + "async.data.a == 1" + ")" * 300, "timeout": "1h"})]),
     [FinishRun("failed", {"name": "InngestErrInvalidWait",
                           "message": "Invalid waitForEvent: the expression nests more than 75 brackets deep"})]),
    ("206 WaitForEvent whose condition is longer than the limit fails the run", FIRST,
     sdk(206, [op("WaitForEvent", name="app/x", opts={"if": "async.data.a == 1 || " * 300 + "true", "timeout": "1h"})]),
     [FinishRun("failed", {"name": "InngestErrInvalidWait",
                           "message": "Invalid waitForEvent: the expression is 6,304 characters long; the limit is 4,096"})]),
    ("206 WaitForEvent longer than 366 days fails the run", FIRST,
     sdk(206, [op("WaitForEvent", name="app/x", opts={"timeout": "400d"})]),
     [FinishRun("failed", {"name": "InngestErrTimeoutTooLong", "message": "A wait may last at most 366 days."})]),
    ("206 InvokeFunction starts the target with its payload and timeout", FIRST,
     sdk(206, [op("InvokeFunction", displayName="call", opts={"function_id": "app-child", "payload": {"data": {"x": 1}}, "timeout": "1m"})]),
     [InvokeFunction("hashed-id", "call", "app-child", {"data": {"x": 1}}, NOW + timedelta(minutes=1))]),
    ("206 InvokeFunction without a timeout waits up to a year", FIRST,
     sdk(206, [op("InvokeFunction", displayName="call", opts={"function_id": "app-child", "payload": {"data": {}}, "timeout": None})]),
     [InvokeFunction("hashed-id", "call", "app-child", {"data": {}}, NOW + timedelta(days=365))]),
    ("206 RunComplete completes the run with data", FIRST, sdk(206, [op("RunComplete", data={"r": 1})]),
     [FinishRun("completed", {"r": 1})]),
    ("206 buffered StepRuns with RunComplete are stored, then the run completes", FIRST,
     sdk(206, [op("StepRun", id="a", data=1), op("StepRun", id="b", data=2), op("RunComplete", id="c", data={"r": 3})]),
     [RecordStep("a", "user-id", "StepRun", {"data": 1}), RecordStep("b", "user-id", "StepRun", {"data": 2}),
      FinishRun("completed", {"r": 3})]),
    ("206 DiscoveryRequest asks for discovery", FIRST, sdk(206, [op("DiscoveryRequest")]), [discovery()]),
    ("206 empty array re-drives discovery", FIRST, sdk(206, []), [discovery()]),
    ("206 None ops only re-drive discovery", FIRST, sdk(206, [op("None")]), [discovery()]),
    ("206 several StepPlanned fan out as a group", FIRST, sdk(206, [op("StepPlanned", id="a"), op("StepPlanned", id="b")]),
     [ScheduleCall("a", 0, NOW), ScheduleCall("b", 0, NOW), PlanParallel(("a", "b"), "wait")]),
    ("206 a race group discovers after each step", FIRST,
     sdk(206, [op("StepPlanned", id="a", opts={"parallelMode": "race"}), op("StepPlanned", id="b", opts={"parallelMode": "race"})]),
     [ScheduleCall("a", 0, NOW), ScheduleCall("b", 0, NOW), PlanParallel(("a", "b"), "race")]),
    ("206 a group with a sleep waits for the sleep too", FIRST,
     sdk(206, [op("StepPlanned", id="a"), op("Sleep", id="s", displayName="s", opts={"duration": "1s"})]),
     [ScheduleCall("a", 0, NOW), OpenWait("s", "s", "", "", NOW + timedelta(seconds=1), kind="sleep"),
      PlanParallel(("a", "s"), "wait")]),
    ("206 unknown opcode fails the run with a clear message", FIRST, sdk(206, [op("Teleport")]),
     [FinishRun("failed", {"name": "UnknownOpcodeError",
                           "message": "The SDK answered with an op this server does not know: unknown opcode 'Teleport'"})]),
    ("206 numeric opcode is refused", FIRST, sdk(206, [{"op": 2, "id": "x"}]),
     [FinishRun("failed", {"name": "UnknownOpcodeError",
                           "message": "The SDK answered with an op this server does not know: unknown opcode 2"})]),
    ("500 retries with backoff while attempts remain", FIRST, sdk(500, {"name": "E", "message": "m"}),
     [ScheduleCall("step", 1, NOW + timedelta(seconds=30))]),
    ("500 on the last attempt fails the run with the error body", LAST, sdk(500, {"name": "E", "message": "m"}),
     [FinishRun("failed", {"name": "E", "message": "m"}, "invalid status code: 500")]),
    ("500 with X-Inngest-No-Retry fails at once", FIRST, sdk(500, {"code": "non_retriable_error"}, is_no_retry=True),
     [FinishRun("failed", {"code": "non_retriable_error"}, "NonRetriableError")]),
    ("a proxy's 502 on the last attempt fails the run, saying what came back", LAST,
     SdkResponse(status=502, body="Bad Gateway", has_sdk_header=False),
     [FinishRun("failed", {"name": "Error", "message": "Your server returned HTTP 502 before the SDK responded."},
                "invalid status code: 502")]),
    ("500 honours Retry-After in seconds", FIRST, sdk(500, {"name": "E"}, retry_after="3"),
     [ScheduleCall("step", 1, NOW + timedelta(seconds=3))]),
    ("Retry-After below one second is raised to one second", FIRST, sdk(500, {"name": "E"}, retry_after="0"),
     [ScheduleCall("step", 1, NOW + timedelta(seconds=1))]),
    ("400 is a retriable function error too", FIRST, sdk(400, {"name": "E"}),
     [ScheduleCall("step", 1, NOW + timedelta(seconds=30))]),
    ("a targeted step's error retries the same target", CallView("abc", 0, 3), sdk(500, {"name": "E"}),
     [ScheduleCall("abc", 1, NOW + timedelta(seconds=30))]),
    ("an answer without X-Inngest-SDK is a retriable error", FIRST,
     SdkResponse(status=200, body={"x": 1}, has_sdk_header=False),
     [ScheduleCall("step", 1, NOW + timedelta(seconds=30))]),
    ("no HTTP answer at all is a retriable error", FIRST, SdkResponse(status=None, transport_error="refused"),
     [ScheduleCall("step", 1, NOW + timedelta(seconds=30))]),
    ("no HTTP answer on the last attempt fails the run", LAST, SdkResponse(status=None, transport_error="refused"),
     [FinishRun("failed", {"name": "Error", "message": "Unable to reach SDK URL: refused"}, "refused")]),
]


@pytest.mark.parametrize("call, response, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_decision_table(call: CallView, response: SdkResponse, expected: list) -> None:
    assert list(decide(call, response, CLOCK).commands) == expected


def test_linear_retry_interval_replaces_the_backoff_table() -> None:
    clock = Clock(now=NOW, jitter_fraction=0.9, linear_retry_seconds=0.5)
    decision = decide(FIRST, sdk(500, {"name": "E"}), clock)
    assert decision.commands == (ScheduleCall("step", 1, NOW + timedelta(seconds=0.5)),)


def test_request_version_reported_on_206_is_kept() -> None:
    decision = decide(FIRST, sdk(206, [op("StepRun", data=1)], request_version=2), CLOCK)
    assert decision.request_version == 2


def test_parallel_plan_disables_immediate_execution() -> None:
    decision = decide(FIRST, sdk(206, [op("StepPlanned", id="a"), op("StepPlanned", id="b")]), CLOCK)
    assert decision.disable_immediate_execution is True


def test_backoff_grows_with_the_attempt_number() -> None:
    later = CallView(step_target="step", attempt=3, max_attempts=10)
    decision = decide(later, sdk(500, {"name": "E"}), Clock(now=NOW, jitter_fraction=0.0))
    assert decision.commands == (ScheduleCall("step", 4, NOW + timedelta(seconds=120)),)


def test_a_recorded_steps_text_is_its_rows_and_its_size_the_limits() -> None:
    """The text a step's row stores is made once (RecordStep.output_text) for the row, the
    limits and the worker's count of the run's state; a missing output counts as `null`."""
    record = RecordStep("hashed-id", "user-id", "StepRun", {"data": {"é": "x" * 10}})
    assert record.output_text == '{"data":{"é":"xxxxxxxxxx"}}'
    assert record.output_text is record.output_text
    assert record.output_bytes == len('{"data":{"é":"xxxxxxxxxx"}}')
    empty = RecordStep("hashed-id", "user-id", "StepRun", None)
    assert (empty.output_text, empty.output_bytes) == (None, 4)


def test_an_attempts_text_comes_from_its_steps_when_the_step_holds_that_very_value() -> None:
    """RecordStep.stored_text_of: a StepRun's record holds its data as `{"data": …}`, a legacy
    Step's as the output itself; an equal but other object, or None, is not taken from it."""
    data = {"k": ["é", "a\ud800b", 1.5]}
    step_run, legacy = RecordStep("a", "a", "StepRun", {"data": data}), RecordStep("b", "b", "Step", data)
    assert step_run.stored_text_of(data) == legacy.stored_text_of(data) == dump_json(data)
    assert step_run.stored_text_of(dict(data)) is None and step_run.stored_text_of(None) is None
    assert RecordStep("c", "c", "StepRun", {"data": None}).stored_text_of(None) is None
