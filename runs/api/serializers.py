"""How runs look in the REST API (§1.10)."""
from __future__ import annotations

from events.api.serializers import ACCOUNT_ID, ENVIRONMENT_ID
from runs.models import Cancellation, Run, RunStatus

REST_STATUS = {
    RunStatus.QUEUED: "Running",
    RunStatus.RUNNING: "Running",
    RunStatus.COMPLETED: "Completed",
    RunStatus.FAILED: "Failed",
    RunStatus.CANCELLED: "Cancelled",
    RunStatus.SKIPPED: "Skipped",
}


def run_json(run: Run) -> dict:
    return {
        "run_id": run.id,
        "run_started_at": (run.started_at or run.created_at).isoformat(),
        "function_id": str(run.function_id),
        "function_version": run.function.version,
        "environment_id": ENVIRONMENT_ID,
        "event_id": run.event.internal_id if run.event_id else None,
        "batch_id": None,
        "original_run_id": None,
        "cron": None,
        "status": REST_STATUS[run.status],
        "ended_at": run.ended_at.isoformat() if run.ended_at else None,
        "output": run.output,
        # Why flow control delayed, skipped or cancelled the run; null when it did nothing.
        "flow_control": {"action": run.flow_action, "reason": run.flow_reason} if run.flow_action else None,
    }


def cancellation_json(cancellation: Cancellation) -> dict:
    return {
        "id": cancellation.id,
        "created_at": cancellation.created_at.isoformat(),
        "name": None,
        "account_id": ACCOUNT_ID,
        "environment_id": ENVIRONMENT_ID,
        "app_id": cancellation.app_id,
        "function_internal_id": str(cancellation.function_id),
        "function_id": cancellation.function.slug,
        "started_after": cancellation.started_after.isoformat() if cancellation.started_after else None,
        "started_before": cancellation.started_before.isoformat(),
        "if": cancellation.expression or None,
        "kind": "bulk_run",
        "cause": "api",
        "cancelled_runs": cancellation.cancelled_count,
    }
