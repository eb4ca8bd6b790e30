"""The schema: runs, their traces and span outputs, and events, under Inngest's names."""
from __future__ import annotations

import enum
import json
from datetime import datetime, timezone
from typing import Optional

import strawberry
from django.views.decorators.csrf import csrf_exempt
from strawberry.django.views import GraphQLView
from strawberry.schema.config import StrawberryConfig

from events.api.serializers import ENVIRONMENT_ID
from events.models import Event
from runs.api.gql.outputs import RunTraceSpanOutput, output_by_id
from runs.api.gql.scalars import SCALAR_MAP, Time, ULID, time_text
from runs.api.gql.trace import RunTraceSpan, run_trace
from runs.models import Run



@strawberry.enum
class FunctionRunStatus(enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"


@strawberry.type
class RunTraceTrigger:
    payloads: list[str]


@strawberry.type(name="FunctionRunV2")
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

    @strawberry.field(name="queuedAt")
    def queued_at(self) -> Time:
        return time_text(self.row.created_at)

    @strawberry.field(name="startedAt")
    def started_at(self) -> Optional[Time]:
        return time_text(self.row.started_at)

    @strawberry.field(name="endedAt")
    def ended_at(self) -> Optional[Time]:
        return time_text(self.row.ended_at)

    @strawberry.field(name="eventName")
    def event_name(self) -> Optional[str]:
        return (self.row.events or [{}])[0].get("name")

    @strawberry.field(name="isBatch")
    def is_batch(self) -> bool:
        return len(self.row.events or []) > 1

    @strawberry.field
    def trace(self, preview: Optional[bool] = None) -> Optional[RunTraceSpan]:
        """`preview` picks Inngest's newer trace store; this server has one trace, the same for both."""
        return run_trace(self.row)


def _runs_of(event: Event) -> list[FunctionRun]:
    runs = Run.objects.select_related("function").filter(event__internal_id=event.internal_id).order_by("id")
    return [FunctionRun(row=run) for run in runs]


@strawberry.type(name="Event")
class GqlEvent:
    row: strawberry.Private[Event]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(self.row.internal_id)

    @strawberry.field
    def name(self) -> str:
        return self.row.name

    @strawberry.field
    def raw(self) -> str:
        return json.dumps(self.row.as_payload())

    @strawberry.field(name="functionRuns")
    def function_runs(self) -> list[FunctionRun]:
        return _runs_of(self.row)


@strawberry.type(name="EventV2")
class GqlEventV2:
    row: strawberry.Private[Event]

    @strawberry.field
    def id(self) -> ULID:
        return ULID(self.row.internal_id)

    @strawberry.field(name="envID")
    def env_id(self) -> str:
        return ENVIRONMENT_ID

    @strawberry.field(name="idempotencyKey")
    def idempotency_key(self) -> Optional[str]:
        """The event's `id` field: the one it was sent with, else the server's."""
        return self.row.event_id

    @strawberry.field
    def name(self) -> str:
        return self.row.name

    @strawberry.field(name="occurredAt")
    def occurred_at(self) -> Time:
        return Time(_ms_time(self.row.ts))

    @strawberry.field(name="receivedAt")
    def received_at(self) -> Time:
        return time_text(self.row.received_at)

    @strawberry.field
    def raw(self) -> str:
        """The event as its producer sent it, as the run's functions got it."""
        return json.dumps(self.row.as_payload())

    @strawberry.field
    def version(self) -> Optional[str]:
        return self.row.v or None

    @strawberry.field
    def runs(self) -> list[FunctionRun]:
        return _runs_of(self.row)


def _ms_time(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=timezone.utc).isoformat()


@strawberry.input
class EventQuery:
    event_id: strawberry.ID = strawberry.field(name="eventId")
    workspace_id: Optional[str] = strawberry.field(name="workspaceId", default=None)


class EventNotFound(Exception):
    """eventV2 is non-null in Inngest's schema: an unknown id is an error, not a null."""


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
        return output_by_id(outputID)

    @strawberry.field
    def event(self, query: EventQuery) -> Optional[GqlEvent]:
        row = Event.objects.filter(internal_id=str(query.event_id)).order_by("id").first()
        return GqlEvent(row=row) if row else None

    @strawberry.field(name="eventV2")
    def event_v2(self, id: ULID) -> GqlEventV2:  # noqa: A002 - the wire name
        row = Event.objects.filter(internal_id=str(id)).order_by("id").first()
        if row is None:
            raise EventNotFound(f"event not found: {id}")
        return GqlEventV2(row=row)


schema = strawberry.Schema(query=Query, config=StrawberryConfig(auto_camel_case=False, scalar_map=SCALAR_MAP))
graphql_view = csrf_exempt(GraphQLView.as_view(schema=schema, graphql_ide=None))
