"""A run's trace as Inngest's dev server shows it: the run is the root span, its steps the children.

Built from the rows a run leaves (runs/models.py): memoized steps (ended spans, in the order they
ended), the calls made for them (when each started, how many attempts), and the waits still open
(sleeps, waits for an event, invokes: spans still WAITING). A step being retried shows as
RUNNING with its attempts so far. Span ids are derived from the run and step ids, so the same
run always gives the same trace.
"""
from __future__ import annotations

import enum
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Optional

import strawberry

from runs.api.gql.outputs import error_of, output_id, run_output_id
from runs.api.gql.scalars import SpanMetadataKind, SpanMetadataScope, SpanMetadataValues, Time, ULID, time_text
from runs.models import Run, RunStatus, Step, StepAttempt, Wait, WaitKind
from runs.run_metadata import folded_metadata
from runs.trace_context import span_id, trace_id


@strawberry.enum
class RunTraceSpanStatus(enum.Enum):
    FAILED = "FAILED"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    WAITING = "WAITING"
    CANCELLED = "CANCELLED"
    SKIPPED = "SKIPPED"


@strawberry.enum
class StepOp(enum.Enum):
    INVOKE = "INVOKE"
    RUN = "RUN"
    SLEEP = "SLEEP"
    WAIT_FOR_EVENT = "WAIT_FOR_EVENT"
    AI_GATEWAY = "AI_GATEWAY"
    WAIT_FOR_SIGNAL = "WAIT_FOR_SIGNAL"


# The wire opcodes (executor/opcodes.py) a step's memo or a call's answer was recorded under.
_STEP_OPS = {
    "StepRun": StepOp.RUN, "Step": StepOp.RUN, "StepError": StepOp.RUN, "StepFailed": StepOp.RUN,
    "Gateway": StepOp.RUN, "Sleep": StepOp.SLEEP, "WaitForEvent": StepOp.WAIT_FOR_EVENT,
    "InvokeFunction": StepOp.INVOKE, "AIGateway": StepOp.AI_GATEWAY, "WaitForSignal": StepOp.WAIT_FOR_SIGNAL,
}
_WAIT_OPS = {WaitKind.SLEEP: StepOp.SLEEP, WaitKind.EVENT: StepOp.WAIT_FOR_EVENT, WaitKind.INVOKE: StepOp.INVOKE}
_RUN_STATUSES = {status.value: RunTraceSpanStatus[status.name] for status in RunStatus}


@strawberry.type
class SpanMetadata:
    scope: SpanMetadataScope
    kind: SpanMetadataKind
    values: SpanMetadataValues
    updated_at: Time = strawberry.field(name="updatedAt")


@strawberry.type
class RunTraceSpan:
    name: str
    status: RunTraceSpanStatus
    run_id: ULID = strawberry.field(name="runID")
    span_id: str = strawberry.field(name="spanID")
    trace_id: str = strawberry.field(name="traceID")
    app_id: str = strawberry.field(name="appID")
    function_id: str = strawberry.field(name="functionID")
    is_root: bool = strawberry.field(name="isRoot", default=False)
    parent_span_id: Optional[str] = strawberry.field(name="parentSpanID", default=None)
    step_id: Optional[str] = strawberry.field(name="stepID", default=None)
    step_op: Optional[StepOp] = strawberry.field(name="stepOp", default=None)
    step_type: str = strawberry.field(name="stepType", default="")
    output_id: Optional[str] = strawberry.field(name="outputID", default=None)
    attempts: Optional[int] = None
    queued_at: Time = strawberry.field(name="queuedAt", default="")
    started_at: Optional[Time] = strawberry.field(name="startedAt", default=None)
    ended_at: Optional[Time] = strawberry.field(name="endedAt", default=None)
    duration: Optional[int] = None
    is_userland: bool = strawberry.field(name="isUserland", default=False)
    metadata: list[SpanMetadata] = strawberry.field(default_factory=list)
    children_spans: list["RunTraceSpan"] = strawberry.field(name="childrenSpans", default_factory=list)


@dataclass
class _Calls:
    """What the calls made for one step say about it."""

    count: int = 0
    first_started_at: Optional[datetime] = None
    last_ended_at: Optional[datetime] = None
    opcode: str = ""
    name: str = ""


@dataclass
class _RunRows:
    run: Run
    steps: list[Step]
    calls: dict[str, _Calls] = field(default_factory=dict)
    waits: list[Wait] = field(default_factory=list)


def run_trace(run: Run) -> RunTraceSpan:
    """The run's trace: five queries, however many steps (the run with its function comes loaded)."""
    rows = _RunRows(run=run, steps=list(Step.objects.filter(run_id=run.id).order_by("position")))
    rows.calls = _calls_by_step(run.id)
    rows.waits = list(Wait.objects.filter(run_id=run.id, kind__in=list(_WAIT_OPS)).order_by("created_at", "id"))
    root = _root_span(run)
    root.children_spans = [*_ended_spans(rows, root), *_open_spans(rows, root)]
    _attach_metadata(run.id, root)
    return root


def _attach_metadata(run_id: str, root: RunTraceSpan) -> None:
    """The run's metadata as it stands (runs/run_metadata.py): run-scoped on the root span (scores,
    usage), the rest on the span of the step it was recorded for."""
    by_step: dict[str, list[SpanMetadata]] = defaultdict(list)
    for entry in folded_metadata(run_id):
        item = SpanMetadata(scope=SpanMetadataScope(entry["scope"]), kind=SpanMetadataKind(entry["kind"]),
                            values=SpanMetadataValues(entry["values"]), updated_at=Time(entry["updated_at"]))
        if entry["scope"] == "run" or not entry["step_id"]:
            root.metadata.append(item)
        else:
            by_step[entry["step_id"]].append(item)
    for span in root.children_spans:  # recorded under the step's hashed id or the id the user gave it
        span.metadata = by_step.get(span.step_id or "") or by_step.get(span.name, [])


def _calls_by_step(run_id: str) -> dict[str, _Calls]:
    calls: dict[str, _Calls] = defaultdict(_Calls)
    attempts = StepAttempt.objects.filter(run_id=run_id).exclude(step_id="").order_by("started_at", "id")
    for step_id, name, opcode, started_at, ended_at in attempts.values_list(
        "step_id", "step_name", "opcode", "started_at", "ended_at"
    ):
        seen = calls[step_id]
        seen.count += 1
        seen.first_started_at = seen.first_started_at or started_at
        seen.last_ended_at, seen.opcode, seen.name = ended_at, opcode, name or seen.name
    return calls


def _root_span(run: Run) -> RunTraceSpan:
    span = _span(run, "", run.function.slug, _RUN_STATUSES[run.status], run.started_at, run.ended_at)
    span.is_root, span.output_id, span.queued_at = True, run_output_id(run), time_text(run.created_at)
    return span


def _ended_spans(rows: _RunRows, root: RunTraceSpan) -> list[RunTraceSpan]:
    spans = []
    for step in rows.steps:
        calls = rows.calls.get(step.step_id, _Calls())
        status = RunTraceSpanStatus.FAILED if error_of(step.output) else RunTraceSpanStatus.COMPLETED
        span = _step_span(rows.run, root, step.step_id, step.name or step.step_id, status, _STEP_OPS.get(step.op))
        started_at = calls.first_started_at or step.created_at
        span.queued_at, span.started_at, span.ended_at = time_text(started_at), time_text(started_at), time_text(step.created_at)
        span.duration = _milliseconds(started_at, step.created_at)
        span.attempts, span.output_id = calls.count or None, output_id(rows.run.id, step.step_id)
        spans.append(span)
    return spans


def _open_spans(rows: _RunRows, root: RunTraceSpan) -> list[RunTraceSpan]:
    """Steps not memoized yet: open waits, and steps whose calls failed and are to be retried."""
    if rows.run.is_terminal:
        return []
    ended = {step.step_id for step in rows.steps}
    spans = []
    for wait in rows.waits:
        span = _step_span(rows.run, root, wait.step_id, wait.step_name or wait.step_id, RunTraceSpanStatus.WAITING, _WAIT_OPS[wait.kind])
        span.queued_at = span.started_at = time_text(wait.created_at)
        spans.append(span)
        ended.add(wait.step_id)
    for step_id, calls in rows.calls.items():
        if step_id not in ended and calls.opcode == "StepError":
            span = _step_span(rows.run, root, step_id, calls.name or step_id, RunTraceSpanStatus.RUNNING, StepOp.RUN)
            span.queued_at = span.started_at = time_text(calls.first_started_at)
            span.attempts = calls.count
            spans.append(span)
    return spans


def _step_span(run: Run, root: RunTraceSpan, step_id: str, name: str, status: RunTraceSpanStatus,
               step_op: Optional[StepOp]) -> RunTraceSpan:
    span = _span(run, step_id, name, status, None, None)
    span.parent_span_id, span.step_id, span.step_op = root.span_id, step_id, step_op
    span.step_type = step_op.value if step_op else ""
    return span


def _span(run: Run, step_id: str, name: str, status: RunTraceSpanStatus, started_at: Optional[datetime],
          ended_at: Optional[datetime]) -> RunTraceSpan:
    return RunTraceSpan(
        name=name, status=status, run_id=ULID(run.id), span_id=span_id(run.id, step_id), trace_id=trace_id(run.id),
        app_id=str(run.function.app_id), function_id=str(run.function_id),
        started_at=time_text(started_at), ended_at=time_text(ended_at),
        duration=_milliseconds(started_at, ended_at),
    )


def _milliseconds(started_at: Optional[datetime], ended_at: Optional[datetime]) -> Optional[int]:
    if started_at is None or ended_at is None:
        return None
    return max(0, int((ended_at - started_at).total_seconds() * 1000))
