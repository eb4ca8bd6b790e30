"""Answers the decision refuses, and the run limits (protocol.md §4.6). Pure: no database, no HTTP."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from executor.decision import Clock, decide, decide_failure
from executor.responses import CallView, Limits, SdkResponse
from runs.decision_commands import FinishRun, ScheduleCall

NOW = datetime(2026, 11, 24, 12, 0, 0, tzinfo=timezone.utc)
CLOCK = Clock(now=NOW, linear_retry_seconds=5)
SMALL = Limits(max_step_output_bytes=1000, max_state_bytes=5000, max_steps=3, max_ops_per_response=4, max_calls_without_progress=5)
FIRST = CallView("step", 0, 2, limits=SMALL)
LAST = CallView("step", 1, 2, limits=SMALL)
RETRY = ScheduleCall("step", 1, NOW + timedelta(seconds=5))


def answer(*ops: dict, size: int = 0) -> SdkResponse:
    return SdkResponse(status=206, body=list(ops), has_sdk_header=True, body_bytes=size or len(str(ops)))


def step_run(step_id: str = "s1", data: object = 1, **fields: object) -> dict:
    return {"op": "StepRun", "id": step_id, "name": step_id, "data": data, **fields}


def failure(decision) -> tuple[str, str]:
    return decision.error["name"], decision.error["message"]


@pytest.mark.parametrize("op, problem", [
    (step_run("x" * 65), "its id is longer than 64 characters"),
    (step_run("nul\u0000id"), "its id: JSON strings cannot contain the NUL character"),
    (step_run("s1", displayName="half \ud800"), "its displayName: JSON strings cannot contain unpaired surrogates"),
], ids=["id too long for the step column", "NUL in the id", "lone surrogate in the name"])
def test_an_op_whose_id_or_name_cannot_be_stored_is_a_failed_attempt(op: dict, problem: str) -> None:
    first = decide(FIRST, answer(op), CLOCK)
    assert first.commands == (RETRY,) and failure(first)[0] == "InngestErrInvalidResponse" and problem in failure(first)[1]
    last = decide(LAST, answer(op), CLOCK)
    assert last.commands == (FinishRun("failed", last.error),) and problem in failure(last)[1]


def test_an_unusable_answer_is_retried_then_fails_the_run() -> None:
    unreadable = SdkResponse(status=201, has_sdk_header=True, answer_error="the answer is JSON nested more than 200 levels deep")
    assert decide(FIRST, unreadable, CLOCK).commands == (RETRY,)
    last = decide(LAST, unreadable, CLOCK)
    assert last.finish is not None and failure(last) == (
        "InngestErrInvalidResponse", "The app's answer cannot be used: the answer is JSON nested more than 200 levels deep")


@pytest.mark.parametrize("opts, message", [
    ({"event": "e" * 256, "timeout": "1h"}, "event name is longer than 255 characters"),
    ({"event": "app/ok", "timeout": "1h", "if": "event.data.a == 'nul\u0000'"}, "cannot contain the NUL character"),
])
def test_a_wait_no_event_could_ever_match_fails_the_run_at_once(opts: dict, message: str) -> None:
    decision = decide(FIRST, answer({"op": "WaitForEvent", "id": "w", "opts": opts}), CLOCK)
    assert decision.finish is not None and failure(decision)[0] == "InngestErrInvalidWait" and message in failure(decision)[1]


def test_an_invoke_whose_event_cannot_be_stored_fails_the_run_at_once() -> None:
    invoke = {"op": "InvokeFunction", "id": "i", "opts": {"function_id": "app-child", "payload": {"data": {}, "id": "x" * 256}}}
    decision = decide(FIRST, answer(invoke), CLOCK)
    assert failure(decision) == ("InngestErrInvalidInvoke", "Invalid invoke: the payload's id is longer than 255 characters")


def test_a_step_output_over_the_limit_is_refused_and_retried() -> None:
    big = answer(step_run(data="x" * 1000), size=1100)
    first = decide(FIRST, big, CLOCK)
    assert first.commands == (RETRY,) and failure(first)[0] == "InngestErrStepOutputTooLarge"
    assert "more than the limit of 1000" in failure(first)[1]
    assert decide(LAST, big, CLOCK).finish == FinishRun("failed", first.error)
    assert decide(FIRST, answer(step_run(data="x" * 900), size=1100), CLOCK).records  # {"data": "x…"} fits


def test_the_step_past_the_step_limit_fails_the_run() -> None:
    full = CallView("step", 0, 2, steps_recorded=3, memoized={"a", "b", "c"}, limits=SMALL)
    decision = decide(full, answer(step_run("d")), CLOCK)
    assert failure(decision) == ("InngestErrFunctionOverflowed", "The function run exceeded the step limit of 3 steps.")
    assert decision.finish is not None
    assert decide(full, answer(step_run("c")), CLOCK).records  # a step already recorded adds nothing
    assert decide(full, SdkResponse(status=200, body="done", has_sdk_header=True), CLOCK).finish.status == "completed"


def test_a_run_whose_state_would_pass_the_limit_fails() -> None:
    near_full = CallView("step", 0, 2, steps_recorded=1, state_bytes=4500, limits=SMALL)
    decision = decide(near_full, answer(step_run(data="x" * 600), size=700), CLOCK)
    assert decision.finish is not None and failure(decision)[0] == "InngestErrStateOverflowed"
    assert "would be 5111 bytes, more than the limit of 5000" in failure(decision)[1]
    result = decide(near_full, SdkResponse(status=200, body="x" * 600, has_sdk_header=True, body_bytes=602), CLOCK)
    assert failure(result)[0] == "InngestErrStateOverflowed"  # the result counts too
    assert decide(near_full, answer(step_run(data="x" * 400), size=500), CLOCK).records


def test_calls_that_get_nowhere_are_counted_and_stop_the_run_at_the_limit() -> None:
    empty = answer()
    counted = decide(CallView("step", 0, 2, calls_without_progress=3, limits=SMALL), empty, CLOCK)
    assert counted.calls_without_progress == 4 and counted.schedules == [ScheduleCall("step", 0, NOW)]
    stopped = decide(CallView("step", 0, 2, calls_without_progress=4, limits=SMALL), empty, CLOCK)
    assert stopped.finish is not None and failure(stopped)[0] == "InngestErrNoProgress"
    again = CallView("step", 0, 2, calls_without_progress=4, memoized={"s1"}, limits=SMALL)
    assert decide(again, answer(step_run("s1")), CLOCK).finish is not None  # the same step again is no progress
    moved = decide(CallView("step", 0, 2, calls_without_progress=4, limits=SMALL), answer(step_run("s1")), CLOCK)
    assert moved.records and moved.calls_without_progress == 0


def test_a_call_that_could_not_be_read_or_recorded_is_retried_as_a_failed_call() -> None:
    error = {"name": "InngestErrResponseNotRecorded", "message": "DataError"}
    assert decide_failure(FIRST, CLOCK, error).commands == (RETRY,)
    assert decide_failure(LAST, CLOCK, error).commands == (FinishRun("failed", error),)
