"""How runs look in the REST API (§1.10)."""
from __future__ import annotations

from events.api.serializers import ENVIRONMENT_ID
from runs.models import Run, RunStatus

REST_STATUS = {
    RunStatus.QUEUED: "Running",
    RunStatus.RUNNING: "Running",
    RunStatus.COMPLETED: "Completed",
    RunStatus.FAILED: "Failed",
    RunStatus.CANCELLED: "Cancelled",
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
    }
