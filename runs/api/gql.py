"""`POST /v0/gql`: the slice of the Inngest dev server's GraphQL API that SDK test suites use to
observe runs (protocol reference: python-sdk.md, "How they observe results").

`run(runID){status output trace{childrenSpans{name outputID}}}`, `runTrigger(runID){payloads}`,
`runTraceSpanOutputByID(outputID){data error{message name stack}}` and
`event(query:{eventId}){functionRuns{id}}`. As in Inngest, outputs and payloads travel as JSON
strings, and a step's span output is its data without the `{"data": …}` memo wrapper.
"""
from __future__ import annotations

import base64
import enum
import json
from typing import Any, Optional

import strawberry
from django.views.decorators.csrf import csrf_exempt
from strawberry.django.views import GraphQLView
from strawberry.schema.config import StrawberryConfig

from events.models import Event
from runs.models import Run, Step


@strawberry.enum
class FunctionRunStatus(enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"


@strawberry.type
class StepError:
    message: str
    name: Optional[str]
    stack: Optional[str]


@strawberry.type
class RunTraceSpanOutput:
    data: Optional[str]
    error: Optional[StepError]


@strawberry.type
class RunTraceSpan:
    name: str
    status: str
    output_id: Optional[str] = strawberry.field(name="outputID")
    children_spans: list["RunTraceSpan"] = strawberry.field(name="childrenSpans", default_factory=list)


@strawberry.type
class RunTraceTrigger:
    payloads: list[str]


@strawberry.type
class FunctionRun:
    row: strawberry.Private[Run]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(self.row.id)

    @strawberry.field
    def status(self) -> FunctionRunStatus:
        return FunctionRunStatus(self.row.status)

    @strawberry.field
    def output(self) -> Optional[str]:
        return None if self.row.output is None else json.dumps(self.row.output)

    @strawberry.field(name="functionID")
    def function_id(self) -> str:
        return str(self.row.function_id)

    @strawberry.field(name="startedAt")
    def started_at(self) -> Optional[str]:
        return self.row.started_at.isoformat() if self.row.started_at else None

    @strawberry.field(name="endedAt")
    def ended_at(self) -> Optional[str]:
        return self.row.ended_at.isoformat() if self.row.ended_at else None

    @strawberry.field
    def trace(self) -> RunTraceSpan:
        """The run as a root span whose children are its memoized steps, in the order they ended."""
        steps = Step.objects.filter(run_id=self.row.id).order_by("position").only("step_id", "name", "output")
        children = [
            RunTraceSpan(name=step.name or step.step_id, status="FAILED" if _error_of(step.output) else "COMPLETED",
                         output_id=_output_id(self.row.id, step.step_id))
            for step in steps
        ]
        return RunTraceSpan(name=self.row.function.slug, status=self.row.status.upper(), output_id=None, children_spans=children)


@strawberry.type(name="Event")
class GqlEvent:
    row: strawberry.Private[Event]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(self.row.internal_id)

    @strawberry.field
    def name(self) -> str:
        return self.row.name

    @strawberry.field(name="functionRuns")
    def function_runs(self) -> list[FunctionRun]:
        return [FunctionRun(row=run) for run in Run.objects.select_related("function").filter(event=self.row).order_by("id")]


@strawberry.input
class EventQuery:
    event_id: strawberry.ID = strawberry.field(name="eventId")
    workspace_id: Optional[str] = strawberry.field(name="workspaceId", default=None)


@strawberry.type
class Query:
    @strawberry.field
    def run(self, runID: str) -> Optional[FunctionRun]:  # noqa: N803 - the wire name
        row = Run.objects.select_related("function").filter(id=runID).first()
        return FunctionRun(row=row) if row else None

    @strawberry.field(name="runTrigger")
    def run_trigger(self, runID: str) -> Optional[RunTraceTrigger]:  # noqa: N803 - the wire name
        events = Run.objects.filter(id=runID).values_list("events", flat=True).first()
        if events is None:
            return None
        return RunTraceTrigger(payloads=[json.dumps(event) for event in events or []])

    @strawberry.field(name="runTraceSpanOutputByID")
    def run_trace_span_output_by_id(self, outputID: str) -> Optional[RunTraceSpanOutput]:  # noqa: N803 - the wire name
        run_id, step_id = _decode_output_id(outputID)
        output = Step.objects.filter(run_id=run_id, step_id=step_id).values_list("output", flat=True)
        if not output.exists():
            return None
        return _span_output(output.first())

    @strawberry.field
    def event(self, query: EventQuery) -> Optional[GqlEvent]:
        row = Event.objects.filter(internal_id=str(query.event_id)).first()
        return GqlEvent(row=row) if row else None


def _output_id(run_id: str, step_id: str) -> str:
    return base64.urlsafe_b64encode(f"{run_id}:{step_id}".encode()).decode().rstrip("=")


def _decode_output_id(output_id: str) -> tuple[str, str]:
    try:
        text = base64.urlsafe_b64decode(output_id + "=" * (-len(output_id) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return "", ""
    run_id, _, step_id = text.partition(":")
    return run_id, step_id


def _error_of(output: Any) -> dict | None:
    if isinstance(output, dict) and isinstance(output.get("error"), dict):
        return output["error"]
    return None


def _span_output(output: Any) -> RunTraceSpanOutput:
    """A step's memo as Inngest shows it: {"data": X} → data X; {"error": …} → error; else raw."""
    error = _error_of(output)
    if error is not None:
        stack = error.get("stack")
        return RunTraceSpanOutput(data=None, error=StepError(
            message=str(error.get("message") or ""), name=error.get("name"), stack=None if stack is None else str(stack)))
    if isinstance(output, dict) and set(output) == {"data"}:
        output = output["data"]
    return RunTraceSpanOutput(data=json.dumps(output), error=None)


schema = strawberry.Schema(query=Query, config=StrawberryConfig(auto_camel_case=False))
graphql_view = csrf_exempt(GraphQLView.as_view(schema=schema, graphql_ide=None))
