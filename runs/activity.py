"""One log line per run started, completed, failed or cancelled, on the `inngest.activity`
logger, after the transaction that did it commits. The dev server prints these (and the app
syncs) as its terminal's whole story, with a link to the run's page; production logs them at
INFO like any other line."""
from __future__ import annotations

import logging

from django.db import transaction

from runs.models import Run, RunStatus

log = logging.getLogger("inngest.activity")


def run_started(run: Run) -> None:
    slug, run_id = run.function.slug, run.id
    transaction.on_commit(lambda: log.info("run %s of %s started", run_id, slug, extra={"ui_path": f"/runs/{run_id}"}))


def run_ended(run: Run) -> None:
    slug, run_id, status = run.function.slug, run.id, run.status
    how = status
    if run.started_at and run.ended_at:
        how += f" in {_duration_text((run.ended_at - run.started_at).total_seconds() * 1000)}"
    if status == RunStatus.FAILED and isinstance(run.output, dict):
        error = run.output.get("error") if isinstance(run.output.get("error"), dict) else run.output
        how += f": {error.get('name', 'Error')}: {str(error.get('message', ''))[:200]}"
    level = logging.WARNING if status == RunStatus.FAILED else logging.INFO
    transaction.on_commit(lambda: log.log(level, "run %s of %s %s", run_id, slug, how, extra={"ui_path": f"/runs/{run_id}"}))


def _duration_text(millis: float) -> str:
    return f"{millis:.0f} ms" if millis < 1000 else f"{millis / 1000:.1f} s"
