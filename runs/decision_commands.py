"""What a decision asks for. Applied together in one transaction by runs/lifecycle.py."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any, Union

from core.json_text import dump_json

_DATA_KEY = '{"data":'  # how dump_json begins `{"data": …}`


@dataclass(frozen=True)
class RecordStep:
    """Memoize a step result under its hashed id (the value the SDK gets back in `steps`)."""

    step_id: str
    name: str
    op: str
    output: Any

    @cached_property
    def output_text(self) -> str | None:
        """The output as its row stores it (core/json_text.py; None is SQL NULL), made once for
        everything that needs it: the limits' sizes, the row, the worker's count of the run's state."""
        return None if self.output is None else dump_json(self.output)

    @property
    def output_bytes(self) -> int:
        """The output's size as the limits count it (a missing output counts as `null`)."""
        return len(self.output_text or "null")

    def stored_text_of(self, value: Any) -> str | None:
        """The stored text of `value`, as a finished step's attempt row stores it, when this step's
        output is that very object (a legacy `Step` op) or `{"data": value}` (`StepRun`); None when
        it is neither, or `value` is None (SQL NULL). The second is cut from output_text, which
        holds it exactly: dump_json writes no spaces, the key first, and escapes a lone surrogate
        inside as it would alone. A large output (an API's answer) is then serialized once per
        step, not once per row."""
        output = self.output
        if value is None:
            return None
        if value is output:
            return self.output_text
        if type(output) is not dict or len(output) != 1 or output.get("data") is not value:
            return None
        return self.output_text[len(_DATA_KEY):-1]


@dataclass(frozen=True)
class ScheduleCall:
    """Call the SDK again: discovery (`step_target="step"`) or a targeted step, at `due_at`."""

    step_target: str
    attempt: int
    due_at: datetime


@dataclass(frozen=True)
class OpenWait:
    """Pause the step until an event named `event_name` for which `expression` holds, or
    `expires_at`; a sleep (`kind="sleep"`) just waits for `expires_at`."""

    step_id: str
    name: str
    event_name: str
    expression: str
    expires_at: datetime
    kind: str = "event"
    signal: str = ""  # kind="signal": the signal's name
    replace_on_conflict: bool = False  # kind="signal": take the name over from another run's wait


@dataclass(frozen=True)
class PlanParallel:
    """Several steps were planned at once: discovery waits until `step_ids` have all finished
    ("wait" mode) or runs after each of them ("race" mode)."""

    step_ids: tuple[str, ...]
    mode: str


@dataclass(frozen=True)
class InvokeFunction:
    """Start a run of another function and pause until it ends or `expires_at`."""

    step_id: str
    name: str
    function_id: str  # the target's slug (composite id) or internal UUID
    payload: dict
    expires_at: datetime


@dataclass(frozen=True)
class FinishRun:
    status: str  # RunStatus.COMPLETED or RunStatus.FAILED
    output: Any
    # Why the last call failed as Inngest's driver words it ("invalid status code: 500"): the
    # `error.error` of the run's inngest/function.failed event. "" when no answer says it.
    reason: str = ""


@dataclass(frozen=True)
class AddDefer:
    """`defer()` (op DeferAdd): start `fn_slug` with `input` once this run ends."""

    hashed_id: str
    fn_slug: str
    input: Any
    meta: Any = None
    is_rejected: bool = False  # over a limit: kept as rejected, so the SDK's repeats are no-ops


@dataclass(frozen=True)
class AbortDefer:
    """`abort()` on a deferred run (op DeferAbort): it will not start."""

    hashed_id: str


@dataclass(frozen=True)
class RecordMetadata:
    """Metadata a step's op carried (`metadata: [{kind, scope, op, values}]`)."""

    step_id: str
    kind: str
    scope: str
    op: str
    values: dict


Command = Union[
    RecordStep, ScheduleCall, OpenWait, PlanParallel, InvokeFunction, FinishRun, AddDefer, AbortDefer, RecordMetadata,
]


@dataclass(frozen=True)
class Decision:
    """The commands to carry out, plus what to write in the call's history row."""

    commands: tuple[Command, ...]
    opcode: str = ""
    step_id: str = ""
    step_name: str = ""
    output: Any = None
    error: Any = None
    request_version: int | None = None
    disable_immediate_execution: bool | None = None
    # Calls in a row, this one included, that finished no step and opened no wait: carried by
    # the next call, so an app that never gets anywhere is stopped (executor/limits.py).
    calls_without_progress: int = 0

    @property
    def finish(self) -> FinishRun | None:
        return next((c for c in self.commands if isinstance(c, FinishRun)), None)

    @property
    def schedules(self) -> list[ScheduleCall]:
        return [c for c in self.commands if isinstance(c, ScheduleCall)]

    @property
    def records(self) -> list[RecordStep]:
        return [c for c in self.commands if isinstance(c, RecordStep)]

    @property
    def waits(self) -> list[OpenWait]:
        return [c for c in self.commands if isinstance(c, OpenWait)]

    @property
    def parallel(self) -> PlanParallel | None:
        return next((c for c in self.commands if isinstance(c, PlanParallel)), None)

    @property
    def side_records(self) -> list[AddDefer | AbortDefer | RecordMetadata]:
        """What rides along the ops that drive the run: defers and metadata."""
        return [c for c in self.commands if isinstance(c, (AddDefer, AbortDefer, RecordMetadata))]

    @property
    def invokes(self) -> list[InvokeFunction]:
        return [c for c in self.commands if isinstance(c, InvokeFunction)]
