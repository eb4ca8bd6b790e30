"""A cron trigger fires on schedule, in both modes (beat in production, embedded beat in dev)."""
from __future__ import annotations

import pytest

from tests.stacks import wait_for

pytestmark = pytest.mark.e2e


def test_cron_function_runs_every_minute(stack) -> None:
    server, app = stack
    slug = f"{app.app_id}-every-minute"

    def completed_runs() -> list[tuple]:
        return server.query(
            "SELECT r.output FROM runs_run r JOIN functions_function f ON f.id = r.function_id "
            "WHERE f.slug = %s AND r.status = 'completed'", [slug])

    (output,) = wait_for(completed_runs, timeout=80, interval=0.5, what="the first cron tick")[:1]
    output = output[0] if isinstance(output[0], dict) else __import__("json").loads(output[0])
    assert output["name"] == "inngest/scheduled.timer"
    assert output["scheduledAt"].endswith(":00Z")  # a minute tick
    periodic = server.query("SELECT count(*) FROM django_celery_beat_periodictask WHERE task = 'runs.cron_tick'", [])
    assert periodic[0][0] == 1
