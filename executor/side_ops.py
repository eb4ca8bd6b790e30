"""What rides along the ops that drive a run: defers (DeferAdd, DeferAbort) and the metadata a
step's op carries. Pure, like the decision: it turns ops into commands.

Neither may fail the run (Inngest: "a defer must never fail its parent run"): an op that cannot
be used is left out, and a defer whose input is too large is recorded as rejected, so the SDK's
repeats of it stay no-ops.
"""
from __future__ import annotations

from core.json_text import dump_json
from executor.opcodes import Op, Opcode
from runs.decision_commands import AbortDefer, AddDefer, Command, RecordMetadata
from runs.run_metadata import metadata_problem

MAX_NAME_LENGTH = 255


def side_commands(ops: list[Op], max_input_bytes: int) -> list[Command]:
    commands: list[Command] = []
    for op in ops:
        if op.op is Opcode.DEFER_ADD:
            commands.extend(_defer_add(op, max_input_bytes))
        elif op.op is Opcode.DEFER_ABORT:
            target = str(op.opts.get("target_hashed_id") or "")
            if target and len(target) <= 64:
                commands.append(AbortDefer(target))
        commands.extend(metadata_commands(op))
    return commands


def _defer_add(op: Op, max_input_bytes: int) -> list[Command]:
    fn_slug = op.opts.get("fn_slug")
    if not op.id or not isinstance(fn_slug, str) or not fn_slug or len(fn_slug) > MAX_NAME_LENGTH:
        return []
    data = op.opts.get("input")
    meta = op.opts.get("meta")
    is_too_large = len(dump_json(data)) > max_input_bytes
    return [AddDefer(op.id, fn_slug, None if is_too_large else data, meta if isinstance(meta, dict) else None,
                     is_rejected=is_too_large)]


def metadata_commands(op: Op) -> list[Command]:
    """The op's `metadata` entries that can be stored; the others are left out."""
    if not isinstance(op.metadata, list):
        return []
    step_id = op.userland_id or op.name or op.id
    return [RecordMetadata(step_id, entry["kind"], entry.get("scope") or "step", entry["op"], entry["values"])
            for entry in op.metadata if metadata_problem(entry) == ""]
