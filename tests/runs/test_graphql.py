"""`POST /v0/gql` on rows made with the ORM: the four queries the Python SDK's integration tests
send, checked through the schema and through the Django view with the test client."""
from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from events.models import Event
from runs.api.gql import schema
from runs.models import Run, RunStatus, Step
from tests.factories import make_function

pytestmark = pytest.mark.django_db

# Verbatim from the SDK's integration tests: the field names are the contract.
RUN = "query GetRun($run_id: String!) { run(runID: $run_id) { output status } runTrigger(runID: $run_id) { payloads } }"
HISTORY = "query GetHistory($run_id: String!) { run(runID: $run_id) { trace { childrenSpans { name outputID } } } }"
OUTPUT = ("query GetHistory($output_id: String!) { runTraceSpanOutputByID(outputID: $output_id) "
          "{ data error { message name stack } } }")
EVENT = "query GetRunFromEventID($event_id: ID!) { event(query: {eventId: $event_id}) { functionRuns { id } } }"


def execute(query: str, **variables: Any) -> dict:
    """Runs a query on the schema itself and fails the test on any GraphQL error."""
    result = schema.execute_sync(query, variable_values=variables)
    assert result.errors is None, result.errors
    return result.data


def post(query: str, **variables: Any) -> dict:
    """Runs a query as the SDK does: a JSON POST to the view, with no CSRF token."""
    response = Client(enforce_csrf_checks=True).post(
        "/v0/gql", data=json.dumps({"query": query, "variables": variables, "operationName": None}),
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


def make_run(status: str = RunStatus.COMPLETED, output: Any = None, events: list | None = None,
             event: Event | None = None, slug: str | None = None) -> Run:
    return Run.objects.create(
        id=uuid.uuid4().hex[:26].upper(), function=make_function(slug=slug), event=event, status=status,
        output=output, events=events if events is not None else [{"name": "test/event", "data": {}}],
        started_at=timezone.now(), ended_at=None if status in (RunStatus.QUEUED, RunStatus.RUNNING) else timezone.now(),
    )


def make_steps(run: Run, *steps: tuple[str, Any]) -> None:
    """Memoized steps in completion order, from (name, memo) pairs."""
    Step.objects.bulk_create(
        Step(run=run, step_id=uuid.uuid4().hex, name=name, op="StepRun", output=output, position=position)
        for position, (name, output) in enumerate(steps)
    )


def make_event(name: str = "test/event", data: dict | None = None) -> Event:
    internal_id = uuid.uuid4().hex[:26].upper()
    return Event.objects.create(internal_id=internal_id, name=name, event_id=internal_id, data=data or {},
                                user={}, ts=1_700_000_000_000)


def span_outputs(run_id: str) -> list[tuple[str, dict]]:
    """Each span of the run's trace with its output, the way the SDK's tests walk a history."""
    spans = post(HISTORY, run_id=run_id)["run"]["trace"]["childrenSpans"]
    return [(span["name"], post(OUTPUT, output_id=span["outputID"])["runTraceSpanOutputByID"]) for span in spans]


def test_a_completed_run_its_output_and_its_trigger() -> None:
    payload = {"name": "test/three-steps", "data": {"start": 4}, "id": "abc", "ts": 1}
    run = make_run(output={"result": {"one": 5}}, events=[payload])
    for answer in (execute(RUN, run_id=run.id), post(RUN, run_id=run.id)):
        assert answer["run"] == {"status": "COMPLETED", "output": json.dumps({"result": {"one": 5}})}
        assert [json.loads(p) for p in answer["runTrigger"]["payloads"]] == [payload]


def test_a_batch_trigger_has_one_payload_per_event() -> None:
    events = [{"name": "test/batch", "data": {"n": n}} for n in range(3)]
    run = make_run(events=events)
    payloads = post(RUN, run_id=run.id)["runTrigger"]["payloads"]
    assert [json.loads(p) for p in payloads] == events


def test_a_run_without_output_has_a_null_output() -> None:
    run = make_run(status=RunStatus.RUNNING, output=None)
    assert post(RUN, run_id=run.id)["run"] == {"status": "RUNNING", "output": None}


def test_steps_are_spans_with_their_data_unwrapped() -> None:
    run = make_run(output={"one": 5, "two": 50})
    make_steps(run, ("one", {"data": 5}), ("two", {"data": 50}), ("three", {"data": {"one": 5, "two": 50}}))
    assert span_outputs(run.id) == [
        ("one", {"data": "5", "error": None}), ("two", {"data": "50", "error": None}),
        ("three", {"data": json.dumps({"one": 5, "two": 50}), "error": None}),
    ]


def test_a_failed_run_and_its_failed_step() -> None:
    error = {"name": "ValueError", "message": "the step gave up", "stack": "Traceback (most recent call last): …"}
    run = make_run(status=RunStatus.FAILED, output=error)
    make_steps(run, ("explode", {"error": error}))
    answer = post(RUN, run_id=run.id)["run"]
    # PostgreSQL's jsonb does not keep key order: compare the JSON, not its text.
    assert answer["status"] == "FAILED" and json.loads(answer["output"]) == error
    assert span_outputs(run.id) == [("explode", {"data": None, "error": error})]


def test_a_step_error_without_a_stack() -> None:
    run = make_run(status=RunStatus.FAILED)
    make_steps(run, ("explode", {"error": {"name": "Error", "message": "no stack here"}}))
    (_, output), = span_outputs(run.id)
    assert output == {"data": None, "error": {"name": "Error", "message": "no stack here", "stack": None}}


def test_span_status_tells_failed_steps_apart() -> None:
    run = make_run(status=RunStatus.FAILED)
    make_steps(run, ("fine", {"data": 1}), ("explode", {"error": {"name": "E", "message": "m"}}))
    trace = execute("query($id: String!) { run(runID: $id) { trace { name outputID childrenSpans { name status } } } }",
                    id=run.id)["run"]["trace"]
    assert trace["name"] == run.function.slug and trace["outputID"] is not None  # the run's error
    assert trace["childrenSpans"] == [{"name": "fine", "status": "COMPLETED"}, {"name": "explode", "status": "FAILED"}]


@pytest.mark.parametrize("status, expected", [
    (RunStatus.CANCELLED, "CANCELLED"), (RunStatus.SKIPPED, "SKIPPED"), (RunStatus.QUEUED, "QUEUED"),
])
def test_other_statuses(status: str, expected: str) -> None:
    run = make_run(status=status)
    assert post(RUN, run_id=run.id)["run"]["status"] == expected


def test_repeated_step_names_are_separate_spans_in_order() -> None:
    run = make_run(output=[0, 1])
    make_steps(run, ("foo", {"data": 0}), ("foo", {"data": 1}))
    assert span_outputs(run.id) == [("foo", {"data": "0", "error": None}), ("foo", {"data": "1", "error": None})]


def test_spans_follow_position_not_insertion_order() -> None:
    run = make_run()
    Step.objects.create(run=run, step_id="second", name="b", op="StepRun", output={"data": 2}, position=1)
    Step.objects.create(run=run, step_id="first", name="", op="StepRun", output={"data": 1}, position=0)
    names = [span["name"] for span in post(HISTORY, run_id=run.id)["run"]["trace"]["childrenSpans"]]
    assert names == ["first", "b"]  # an unnamed step shows its id


def test_a_sleep_has_a_null_output() -> None:
    run = make_run()
    make_steps(run, ("nap", None))
    assert span_outputs(run.id) == [("nap", {"data": "null", "error": None})]


def test_a_wait_for_event_memo_is_the_whole_event() -> None:
    # The matched event has a "data" key too; it must not be mistaken for a step.run memo.
    matched = {"name": "test/approved", "data": {"ok": True}, "id": "e1", "ts": 1}
    run = make_run()
    make_steps(run, ("wait", matched))
    (_, output), = span_outputs(run.id)
    assert json.loads(output["data"]) == matched and output["error"] is None


def test_an_unknown_run_is_null_without_errors() -> None:
    assert post(RUN, run_id="01UNKNOWNUNKNOWNUNKNOWN000") == {"run": None, "runTrigger": None}
    assert execute(HISTORY, run_id="01UNKNOWNUNKNOWNUNKNOWN000") == {"run": None}


@pytest.mark.parametrize("output_id", ["not base64 at all!", "", "bm8tY29sb24", "MDFVTktOT1dOOnN0ZXA"])
def test_an_unknown_or_invalid_output_id_is_null(output_id: str) -> None:
    assert post(OUTPUT, output_id=output_id) == {"runTraceSpanOutputByID": None}


def test_an_output_id_names_one_run_step() -> None:
    # Two runs with the same step id (the SDK's ids are hashes of the name): each keeps its own memo.
    first, second = make_run(), make_run()
    for run, value in ((first, "a"), (second, "b")):
        Step.objects.create(run=run, step_id="same-hash", name="s", op="StepRun", output={"data": value}, position=0)
    assert span_outputs(first.id) == [("s", {"data": '"a"', "error": None})]
    assert span_outputs(second.id) == [("s", {"data": '"b"', "error": None})]


def test_an_event_and_the_runs_it_started() -> None:
    event = make_event()
    runs = sorted([make_run(event=event), make_run(event=event)], key=lambda run: run.id)
    make_run(event=make_event())  # another event's run
    for answer in (execute(EVENT, event_id=event.internal_id), post(EVENT, event_id=event.internal_id)):
        assert answer["event"]["functionRuns"] == [{"id": run.id} for run in runs]


def test_an_event_id_and_name_and_an_unknown_event() -> None:
    event = make_event(name="test/named")
    query = "query($e: ID!) { event(query: {eventId: $e}) { id name functionRuns { id } } }"
    assert execute(query, e=event.internal_id) == {"event": {"id": event.internal_id, "name": "test/named",
                                                             "functionRuns": []}}
    assert execute(query, e="01UNKNOWN") == {"event": None}


def test_run_details_for_completeness() -> None:
    run = make_run()
    query = "query($id: String!) { run(runID: $id) { id functionID startedAt endedAt } }"
    assert execute(query, id=run.id)["run"] == {
        "id": run.id, "functionID": str(run.function_id),
        "startedAt": run.started_at.isoformat(), "endedAt": run.ended_at.isoformat(),
    }


def test_a_trace_is_five_queries_however_many_steps(django_assert_num_queries) -> None:
    run = make_run()
    make_steps(run, *((f"step-{n}", {"data": n}) for n in range(20)))
    with django_assert_num_queries(5):  # the run with its function, its steps, their calls, its open waits, its metadata
        spans = execute(HISTORY, run_id=run.id)["run"]["trace"]["childrenSpans"]
    assert len(spans) == 20


def test_a_get_without_a_query_is_not_an_error_page() -> None:
    # The view must never answer with Django's CSRF or 404 page: the SDK only ever POSTs, but a
    # browser or a probe may GET.
    assert Client().get("/v0/gql").status_code in (200, 400, 405)
