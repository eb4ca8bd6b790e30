"""What a decision asks for. Applied together in one transaction by runs/lifecycle.py."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Union


@dataclass(frozen=True)
class RecordStep:
    """Memoize a step result under its hashed id (the value the SDK gets back in `steps`)."""

    step_id: str
    name: str
    op: str
    output: Any


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


Command = Union[RecordStep, ScheduleCall, OpenWait, PlanParallel, InvokeFunction, FinishRun]


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
    def invokes(self) -> list[InvokeFunction]:
        return [c for c in self.commands if isinstance(c, InvokeFunction)]
