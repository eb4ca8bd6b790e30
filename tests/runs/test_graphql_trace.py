"""The trace API the JavaScript SDK's test harness reads (`trace(preview: true)`, the root span's
output, span ids, step ops, metadata, `eventV2`), on rows made with the ORM. The queries are
those of inngest-js's `@inngest/test-harness` and integration tests, verbatim."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from runs.models import RunMetadata, RunStatus, Step, StepAttempt, Wait, WaitKind
from tests.runs.test_graphql import make_event, make_run, post

pytestmark = pytest.mark.django_db

# @inngest/test-harness fetchRunTrace / fetchTraceOutput / getRunTraceMetadata.
RUN_TRACE = """query ($runId: String!) {
        run(runID: $runId) {
          status
          trace(preview: true) {
            status
            outputID
          }
        }
      }"""
TRACE_OUTPUT = """query ($traceID: String!) {
        runTraceSpanOutputByID(outputID: $traceID) {
          data
          error {
            message
            name
          }
        }
      }"""
TRACE_METADATA = """fragment TraceMetadataFields on RunTraceSpan {
        name
        stepID
        spanID
        metadata {
          scope
          kind
          values
          updatedAt
        }
      }

      query ($runId: String!) {
        run(runID: $runId) {
          trace(preview: true) {
            ...TraceMetadataFields
            childrenSpans {
              ...TraceMetadataFields
              childrenSpans {
                ...TraceMetadataFields
              }
            }
          }
        }
      }"""
# packages/inngest/src/test/integration/utils.ts fetchEvent.
EVENT_V2 = """query Event($id: ULID!) {
          eventV2(id: $id) {
            idempotencyKey
            name
            raw
          }
        }"""
SPANS = """query ($runId: String!) { run(runID: $runId) { trace(preview: false) {
    isRoot stepOp attempts startedAt endedAt queuedAt
    childrenSpans { name status stepID stepOp attempts outputID isRoot parentSpanID startedAt endedAt duration } } } }"""


def _root(run_id: str) -> dict:
    return post(RUN_TRACE, runId=run_id)["run"]["trace"]


def _output(output_id: str) -> dict:
    return post(TRACE_OUTPUT, traceID=output_id)["runTraceSpanOutputByID"]


def _memo(run, step_id: str, name: str, output, position: int, op: str = "StepRun") -> Step:
    return Step.objects.create(run=run, step_id=step_id, name=name, op=op, output=output, position=position)


def _call(run, step_id: str, attempt: int, opcode: str, seconds_ago: float) -> None:
    started_at = timezone.now() - timedelta(seconds=seconds_ago)
    StepAttempt.objects.create(run=run, step_target="step", step_id=step_id, step_name=step_id, attempt=attempt,
                               status_code=206, opcode=opcode, started_at=started_at, ended_at=started_at)


def test_a_completed_runs_root_span_holds_its_result() -> None:
    run = make_run(output={"result": [1, 2]})
    root = _root(run.id)
    assert root["status"] == "COMPLETED" and root["outputID"]
    assert _output(root["outputID"]) == {"data": json.dumps({"result": [1, 2]}), "error": None}


def test_a_run_that_returned_nothing_has_a_null_result() -> None:
    run = make_run(output=None)
    assert _output(_root(run.id)["outputID"]) == {"data": "null", "error": None}


def test_a_failed_runs_root_span_holds_its_error() -> None:
    run = make_run(status=RunStatus.FAILED, output={"name": "MyError", "message": "boom", "stack": "at fn"})
    root = _root(run.id)
    assert root["status"] == "FAILED"
    assert _output(root["outputID"]) == {"data": None, "error": {"message": "boom", "name": "MyError"}}


@pytest.mark.parametrize("status, expected", [
    (RunStatus.RUNNING, "RUNNING"), (RunStatus.QUEUED, "QUEUED"), (RunStatus.CANCELLED, "CANCELLED"),
])
def test_a_run_without_a_result_has_no_output_id(status: str, expected: str) -> None:
    run = make_run(status=status)
    assert _root(run.id) == {"status": expected, "outputID": None}


def test_spans_have_stable_distinct_ids_and_step_ids() -> None:
    run = make_run()
    _memo(run, "hash-a", "a", {"data": 1}, 0)
    _memo(run, "hash-b", "b", {"data": 2}, 1)
    first = post(TRACE_METADATA, runId=run.id)["run"]["trace"]
    assert first == post(TRACE_METADATA, runId=run.id)["run"]["trace"]  # the same run, the same trace
    assert first["stepID"] is None and first["metadata"] == []
    assert [(s["name"], s["stepID"], s["metadata"], s["childrenSpans"]) for s in first["childrenSpans"]] == [
        ("a", "hash-a", [], []), ("b", "hash-b", [], [])]
    span_ids = [first["spanID"], *(s["spanID"] for s in first["childrenSpans"])]
    assert len(set(span_ids)) == 3 and all(len(span_id) == 16 for span_id in span_ids)


def test_step_spans_carry_their_op_attempts_and_times() -> None:
    run = make_run()
    _call(run, "flaky", 0, "StepError", 30)
    _call(run, "flaky", 1, "StepRun", 20)
    _memo(run, "flaky", "flaky", {"data": "ok"}, 0)
    _call(run, "nap", 0, "Sleep", 10)
    _memo(run, "nap", "nap", None, 1, op="Sleep")
    _memo(run, "child", "child", {"error": {"name": "Error", "message": "no"}}, 2, op="InvokeFunction")
    trace = post(SPANS, runId=run.id)["run"]["trace"]
    assert trace["isRoot"] and trace["stepOp"] is None and trace["queuedAt"] and trace["endedAt"]
    spans = trace["childrenSpans"]
    assert [(s["name"], s["status"], s["stepOp"], s["attempts"], s["isRoot"]) for s in spans] == [
        ("flaky", "COMPLETED", "RUN", 2, False), ("nap", "COMPLETED", "SLEEP", 1, False),
        ("child", "FAILED", "INVOKE", None, False)]
    assert spans[0]["startedAt"] < spans[1]["startedAt"] and spans[0]["duration"] >= 20_000
    assert _output(spans[2]["outputID"]) == {"data": None, "error": {"message": "no", "name": "Error"}}


def test_a_running_run_shows_open_waits_and_steps_being_retried() -> None:
    run = make_run(status=RunStatus.RUNNING)
    _memo(run, "done", "done", {"data": 1}, 0)
    Wait.objects.create(run=run, kind=WaitKind.SLEEP, step_id="nap", step_name="nap", event_name="",
                        expires_at=timezone.now() + timedelta(hours=1))
    Wait.objects.create(run=run, kind=WaitKind.CANCEL, step_id="cancel-0", event_name="test/cancel",
                        expires_at=timezone.now() + timedelta(hours=1))  # not a step: no span
    _call(run, "retrying", 0, "StepError", 5)
    _call(run, "retrying", 1, "StepError", 1)
    spans = post(SPANS, runId=run.id)["run"]["trace"]["childrenSpans"]
    assert [(s["name"], s["status"], s["stepOp"], s["attempts"], s["outputID"]) for s in spans[1:]] == [
        ("nap", "WAITING", "SLEEP", None, None), ("retrying", "RUNNING", "RUN", 2, None)]


def test_event_v2_gives_the_event_as_sent_with_its_meta() -> None:
    event = make_event(name="test/sessions", data={"n": 1})
    event.meta = {"sessions": {"org": "acme"}}
    event.event_id = "my-key"
    event.save()
    answer = post(EVENT_V2, id=event.internal_id)["eventV2"]
    assert answer["idempotencyKey"] == "my-key" and answer["name"] == "test/sessions"
    raw = json.loads(answer["raw"])
    assert raw["data"] == {"n": 1} and raw["meta"] == {"sessions": {"org": "acme"}} and raw["id"] == "my-key"


def test_event_v2_of_an_unknown_id_is_an_error() -> None:
    from django.test import Client

    response = Client().post("/v0/gql", data=json.dumps({"query": EVENT_V2, "variables": {"id": "01UNKNOWN"}}),
                             content_type="application/json")
    body = response.json()
    assert body["data"] is None and "event not found" in body["errors"][0]["message"]


def test_metadata_sits_on_the_root_span_and_on_its_steps_spans() -> None:
    run = make_run()
    _memo(run, "hash-a", "a", {"data": 1}, 0)
    _memo(run, "hash-b", "b", {"data": 2}, 1)
    RunMetadata.objects.create(run=run, scope="run", kind="inngest.score", op="merge", values={"run_score": {"value": True}})
    RunMetadata.objects.create(run=run, scope="run", kind="inngest.score", op="merge", values={"other": {"value": 2}})
    RunMetadata.objects.create(run=run, scope="step", step_id="hash-a", kind="inngest.ai", op="merge", values={"input_tokens": 18})
    RunMetadata.objects.create(run=run, scope="step", step_id="b", kind="userland.default", op="set", values={"k": "v"})
    trace = post(TRACE_METADATA, runId=run.id)["run"]["trace"]
    assert [(m["scope"], m["kind"], m["values"]) for m in trace["metadata"]] == [
        ("run", "inngest.score", {"run_score": {"value": True}, "other": {"value": 2}})]
    assert trace["metadata"][0]["updatedAt"]
    spans = {s["name"]: [(m["scope"], m["kind"], m["values"]) for m in s["metadata"]] for s in trace["childrenSpans"]}
    assert spans == {"a": [("step", "inngest.ai", {"input_tokens": 18})], "b": [("step", "userland.default", {"k": "v"})]}
