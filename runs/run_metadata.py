"""Metadata on runs and their steps: `POST /v1/runs/{id}/metadata` and the `metadata` a step's op
carries (JS v4 `step.metadata`, scoring, AI spans). Each update is kept as it came (an `inngest.ai`
one with its estimated cost added, runs/ai_costs.py); what a run shows is the updates folded in
order (merge, set, delete, add), per (scope, step, kind).
"""
from __future__ import annotations

from typing import Any

from django.db.models import Sum
from django.db.models.functions import Length

from core.json_text import dump_json
from runs.ai_costs import with_estimated_cost
from runs.decision_commands import RecordMetadata
from runs.models import RunMetadata

MAX_RUN_METADATA_BYTES = 1024 * 1024  # all of a run's updates together
MAX_KIND_LENGTH = 255
MAX_METADATA_BYTES = 64 * 1024  # one update's values, as Inngest caps a metadata span
METADATA_OPS = frozenset({"merge", "set", "delete", "add"})
METADATA_SCOPES = frozenset({"run", "step", "step_attempt", "extended_trace"})


def record_step_metadata(run_id: str, commands: list[RecordMetadata], attempt: int | None = None) -> None:
    RunMetadata.objects.bulk_create([
        RunMetadata(run_id=run_id, scope=c.scope, step_id=c.step_id[:255], attempt=attempt, kind=c.kind, op=c.op,
                    values=with_estimated_cost(c.kind, c.values))
        for c in commands
    ])


def metadata_records(run_id: str) -> list[dict[str, Any]]:
    """Every update of the run, oldest first: what the trace API's span `metadata` is built from."""
    rows = RunMetadata.objects.filter(run_id=run_id).order_by("created_at", "id")
    return [{"scope": r.scope, "step_id": r.step_id, "attempt": r.attempt, "kind": r.kind, "op": r.op,
             "values": r.values, "created_at": r.created_at.isoformat()} for r in rows]


def folded_metadata(run_id: str) -> list[dict[str, Any]]:
    """The run's metadata as it stands: one entry per (scope, step, kind), its updates applied in order."""
    folded: dict[tuple[str, str, str], dict[str, Any]] = {}
    for record in metadata_records(run_id):
        key = (record["scope"], record["step_id"], record["kind"])
        entry = folded.setdefault(key, {"scope": key[0], "step_id": key[1], "kind": key[2], "values": {}})
        entry["values"] = combine(entry["values"], record["values"], record["op"])
        entry["updated_at"] = record["created_at"]
    return list(folded.values())


def combine(current: dict, update: dict, op: str) -> dict:
    if op == "set":
        return dict(update)
    if op == "delete":
        return {k: v for k, v in current.items() if k not in update}
    if op == "add":
        combined = dict(current)
        for key, value in update.items():
            if _is_number(combined.get(key)) and _is_number(value):
                combined[key] = combined[key] + value
            elif not _is_number(combined.get(key)):
                combined[key] = value
        return combined
    return {**current, **update}  # merge


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def stored_bytes(run_id: str) -> int:
    return RunMetadata.objects.filter(run_id=run_id).aggregate(total=Sum(Length("values")))["total"] or 0


class MetadataError(ValueError):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def add_run_metadata(run_id: str, body: Any) -> None:
    """`POST /v1/runs/{id}/metadata`: every update is checked before any is stored."""
    if not isinstance(body, dict) or not isinstance(body.get("target") or {}, dict):
        raise MetadataError("Invalid metadata target: the body must be {target, metadata}")
    target, updates = body.get("target") or {}, body.get("metadata")
    step_id = target.get("step_id")
    if step_id is None and any(target.get(k) is not None for k in ("step_index", "step_attempt", "span_id")):
        raise MetadataError("Invalid metadata target: target.step_id must be defined with step_index, step_attempt or span_id")
    if not isinstance(updates, list) or not updates:
        raise MetadataError("Invalid metadata: metadata must be a non-empty list of {kind, op, values}")
    for update in updates:
        if problem := metadata_problem(update):
            raise MetadataError(f"Invalid metadata: {problem}")
    size = sum(len(dump_json(update["values"])) for update in updates)
    if stored_bytes(run_id) + size > MAX_RUN_METADATA_BYTES:
        raise MetadataError("Cumulative metadata size exceeds limit", 413)
    attempt = target.get("step_attempt")
    scope = "run" if step_id is None else ("extended_trace" if target.get("span_id") else "step")
    RunMetadata.objects.bulk_create([
        RunMetadata(run_id=run_id, scope=scope, step_id=str(step_id or "")[:255],
                    attempt=attempt if isinstance(attempt, int) and -1 <= attempt < 32767 else None,
                    kind=u["kind"], op=u["op"], values=with_estimated_cost(u["kind"], u["values"]))
        for u in updates
    ])


def metadata_problem(entry: Any) -> str:
    """Why one `{kind, op, values}` update cannot be stored, or ""."""
    if not isinstance(entry, dict):
        return "an update must be a JSON object"
    kind, op, values = entry.get("kind"), entry.get("op"), entry.get("values")
    if not isinstance(kind, str) or not kind or len(kind) > MAX_KIND_LENGTH:
        return f"kind must be a string of 1 to {MAX_KIND_LENGTH} characters"
    if op not in METADATA_OPS:
        return f"op must be one of {', '.join(sorted(METADATA_OPS))}"
    if not isinstance(values, dict):
        return "values must be a JSON object"
    if entry.get("scope") is not None and entry.get("scope") not in METADATA_SCOPES:
        return f"scope must be one of {', '.join(sorted(METADATA_SCOPES))}"
    if len(dump_json(values)) > MAX_METADATA_BYTES:
        return f"values are larger than {MAX_METADATA_BYTES} bytes"
    return ""
