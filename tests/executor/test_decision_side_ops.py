"""The decision for signals, defers, metadata and the gateway ops. Pure: no database, no HTTP."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from runs.decision_commands import AbortDefer, AddDefer, FinishRun, OpenWait, RecordMetadata, RecordStep, ScheduleCall
from executor.decision import Clock, decide
from executor.responses import CallView, GatewayResult, Limits, SdkResponse

NOW = datetime(2026, 11, 24, 12, 0, 0, tzinfo=timezone.utc)
CLOCK = Clock(now=NOW, jitter_fraction=0.5)
FIRST = CallView(step_target="step", attempt=0, max_attempts=3)
LAST = CallView(step_target="step", attempt=2, max_attempts=3)


def sdk(body: object, **fields: object) -> SdkResponse:
    return SdkResponse(status=206, body=body, has_sdk_header=True, **fields)


def op(opcode: str, op_id: str = "hashed-id", **fields: object) -> dict:
    return {"op": opcode, "id": op_id, "name": "user-id", "displayName": "user-id", **fields}


def test_wait_for_signal_opens_a_signal_wait_with_its_conflict_mode() -> None:
    body = [op("WaitForSignal", name="order-1", opts={"signal": "order-1", "timeout": "30s", "conflict": "replace"})]
    decision = decide(FIRST, sdk(body), CLOCK)
    assert decision.commands == (OpenWait("hashed-id", "user-id", "", "", NOW + timedelta(seconds=30), kind="signal",
                                          signal="order-1", replace_on_conflict=True),)


def test_wait_for_signal_without_a_name_or_with_an_unknown_conflict_mode_fails_the_run() -> None:
    for opts in ({"signal": "", "timeout": "1s"}, {"signal": "s", "timeout": "1s", "conflict": "merge"}):
        decision = decide(FIRST, sdk([op("WaitForSignal", name="", opts=opts)]), CLOCK)
        (finish,) = decision.commands
        assert isinstance(finish, FinishRun) and finish.output["name"] == "InngestErrInvalidWait"


def test_defer_ops_ride_along_a_step_without_making_it_a_parallel_group() -> None:
    body = [op("StepRun", data=4),
            op("DeferAdd", "d1", opts={"fn_slug": "app-later", "input": {"n": 1}}),
            op("DeferAbort", "d2:abort", opts={"target_hashed_id": "d0", "fn_slug": "app-later"})]
    decision = decide(FIRST, sdk(body), CLOCK)
    assert decision.opcode == "StepRun" and decision.disable_immediate_execution is None
    assert decision.commands == (RecordStep("hashed-id", "user-id", "StepRun", {"data": 4}), ScheduleCall("step", 0, NOW),
                                 AddDefer("d1", "app-later", {"n": 1}, None), AbortDefer("d0"))


def test_a_defer_too_large_is_kept_as_rejected_and_one_without_a_function_is_left_out() -> None:
    call = CallView(step_target="step", attempt=0, max_attempts=3, limits=Limits(max_step_output_bytes=10))
    body = [op("DeferAdd", "big", opts={"fn_slug": "app-later", "input": {"text": "x" * 50}}),
            op("DeferAdd", "none", opts={"input": {}}), op("RunComplete", data="done")]
    decision = decide(call, sdk(body), CLOCK)
    assert decision.commands == (FinishRun("completed", "done"), AddDefer("big", "app-later", None, None, is_rejected=True))


def test_a_steps_metadata_is_recorded_under_its_user_id_and_bad_entries_are_left_out() -> None:
    metadata = [{"kind": "userland.default", "scope": "step", "op": "merge", "values": {"a": 1}},
                {"kind": "userland.default", "op": "explode", "values": {}}, "not an object"]
    body = [op("StepRun", data=1, metadata=metadata, userland={"id": "tagged"})]
    decision = decide(FIRST, sdk(body), CLOCK)
    assert decision.side_records == [RecordMetadata("tagged", "userland.default", "step", "merge", {"a": 1})]


def test_a_gateway_answer_is_memoized_as_data() -> None:
    data = {"url": "http://x", "headers": {}, "body": "hi", "status_code": 404}
    body = [op("Gateway", opts={"url": "http://x"})]
    decision = decide(FIRST, sdk(body, gateway_results={"hashed-id": GatewayResult(data=data)}), CLOCK)
    assert decision.commands == (RecordStep("hashed-id", "user-id", "Gateway", {"data": data}), ScheduleCall("step", 0, NOW))


def test_a_failed_gateway_request_is_retried_then_memoized_as_an_error() -> None:
    error = {"name": "AIGatewayError", "message": "Error making AI request: unsuccessful status code: 500"}
    response = sdk([op("AIGateway", opts={})], gateway_results={"hashed-id": GatewayResult(error=error)})
    (retry,) = decide(FIRST, response, CLOCK).commands
    assert isinstance(retry, ScheduleCall) and retry.attempt == 1 and retry.due_at > NOW
    assert decide(LAST, response, CLOCK).commands == (RecordStep("hashed-id", "user-id", "AIGateway", {"error": error}),
                                                      ScheduleCall("step", 0, NOW))


def test_a_refused_request_is_not_retried() -> None:
    error = {"name": "GatewayError", "message": "The request was refused: 10.0.0.1 is private"}
    response = sdk([op("Gateway", opts={})], gateway_results={"hashed-id": GatewayResult(error=error, is_retriable=False)})
    assert decide(FIRST, response, CLOCK).commands[0] == RecordStep("hashed-id", "user-id", "Gateway", {"error": error})
