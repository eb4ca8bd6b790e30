"""The opcodes an SDK answers with in a 206 body (protocol.md §4.2–§4.3), by their wire names."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Opcode(str, enum.Enum):
    NONE = "None"
    STEP = "Step"  # legacy form of StepRun: data stored verbatim
    STEP_RUN = "StepRun"
    STEP_ERROR = "StepError"
    STEP_PLANNED = "StepPlanned"
    SLEEP = "Sleep"
    WAIT_FOR_EVENT = "WaitForEvent"
    INVOKE_FUNCTION = "InvokeFunction"
    AI_GATEWAY = "AIGateway"
    GATEWAY = "Gateway"
    WAIT_FOR_SIGNAL = "WaitForSignal"
    RUN_COMPLETE = "RunComplete"
    STEP_FAILED = "StepFailed"
    SYNC_RUN_COMPLETE = "SyncRunComplete"
    DISCOVERY_REQUEST = "DiscoveryRequest"
    DEFER_ADD = "DeferAdd"
    DEFER_ABORT = "DeferAbort"


# Ops that ride along the ops driving the run and are done at once (no call, no step of their own).
LAZY_OPCODES = frozenset({Opcode.DEFER_ADD, Opcode.DEFER_ABORT})
_BY_LOWER_NAME = {op.value.lower(): op for op in Opcode}


class UnknownOpcodeError(ValueError):
    pass


@dataclass(frozen=True)
class Op:
    """One generator op from a 206 answer."""

    op: Opcode
    id: str = ""
    name: str = ""
    display_name: str = ""
    opts: dict[str, Any] = field(default_factory=dict)
    data: Any = None
    error: Any = None
    metadata: Any = None  # [{kind, scope, op, values}] the step set while it ran (JS v4)
    userland_id: str = ""  # the step's id as the user wrote it

    @property
    def label(self) -> str:
        return self.display_name or self.name or self.id


def parse_op(raw: Any) -> Op:
    """Build an Op from its JSON object; op names are case-insensitive, numbers are refused."""
    if not isinstance(raw, dict):
        raise UnknownOpcodeError(f"an op must be a JSON object, got {type(raw).__name__}")
    name = raw.get("op")
    if not isinstance(name, str) or name.lower() not in _BY_LOWER_NAME:
        raise UnknownOpcodeError(f"unknown opcode {name!r}")
    opts = raw.get("opts")
    return Op(
        op=_BY_LOWER_NAME[name.lower()],
        id=str(raw.get("id") or ""),
        name=str(raw.get("name") or ""),
        display_name=str(raw.get("displayName") or ""),
        opts=opts if isinstance(opts, dict) else {},
        data=raw.get("data"),
        error=raw.get("error"),
        metadata=raw.get("metadata"),
        userland_id=str((raw.get("userland") or {}).get("id") or "") if isinstance(raw.get("userland"), dict) else "",
    )


def parse_ops(body: Any) -> list[Op]:
    """A 206 body is an array of ops (legacy SDKs send a single object)."""
    if body is None:
        return []
    items = body if isinstance(body, list) else [body]
    return [parse_op(item) for item in items]
