"""The maintenance commands on real rows: prune, requeue, replay, export, dead letters, sync."""
from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from events.models import Event
from functions.models import App
from runs.creation import RunRequest, create_runs
from runs.models import PendingCall, Run, RunStatus, Step, StepAttempt
from tests.factories import make_function

pytestmark = pytest.mark.django_db


def command(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def ended_run(function, status: str, days_ago: float, key: str) -> Run:
    event = Event.objects.create(internal_id=f"01E{key:0>23}", name="test/event", event_id=key, data={}, user={}, ts=0,
                                 received_at=timezone.now() - timedelta(days=days_ago))
    (run,) = create_runs([RunRequest(function, event, [event.as_payload()], key)])
    ended_at = timezone.now() - timedelta(days=days_ago)
    Run.objects.filter(id=run.id).update(status=status, ended_at=ended_at)
    PendingCall.objects.filter(run=run).delete()
    run.refresh_from_db()
    return run


def test_prune_runs_deletes_only_history_past_the_cutoff() -> None:
    function = make_function()
    old = ended_run(function, RunStatus.COMPLETED, 40, "old")
    recent = ended_run(function, RunStatus.COMPLETED, 5, "recent")
    (active,) = create_runs([RunRequest(function, None, [{"name": "x"}], "active")])
    Run.objects.filter(id=active.id).update(created_at=timezone.now() - timedelta(days=60))
    assert command("prune_runs", "--older-than", "30d", "--dry-run") == \
        "would delete 1 runs, 1 events and 0 expired idempotency keys older than 30d\n"
    assert Run.objects.filter(id=old.id).exists()
    assert command("prune_runs", "--older-than", "30d").startswith("deleted 1 runs, 1 events")
    assert set(Run.objects.values_list("id", flat=True)) == {recent.id, active.id}


def test_requeue_stuck_runs_gives_an_orphaned_run_a_call() -> None:
    (run,) = create_runs([RunRequest(make_function(), None, [{"name": "x"}], "orphan")])
    PendingCall.objects.filter(run=run).delete()  # as if lost between two transactions
    Run.objects.filter(id=run.id).update(status=RunStatus.RUNNING, created_at=timezone.now() - timedelta(minutes=5))
    assert command("requeue_stuck_runs", "--dry-run").splitlines() == [
        f"orphaned run {run.id}", "would requeue 0 lost calls and 1 orphaned runs"]
    assert not PendingCall.objects.filter(run=run).exists()
    assert command("requeue_stuck_runs").splitlines()[-1] == "requeued 0 lost calls and 1 orphaned runs"
    assert PendingCall.objects.get(run=run).step_target == "step"


def test_replay_run_one_and_in_bulk() -> None:
    function = make_function()
    failed = ended_run(function, RunStatus.FAILED, 1, "failed")
    ended_run(function, RunStatus.COMPLETED, 1, "ok")
    out = command("replay_run", failed.id)
    new_id = out.splitlines()[0].split()[-1]  # "replayed <old> as <new>"
    replayed = Run.objects.get(id=new_id)
    assert replayed.events == failed.events and replayed.status == RunStatus.QUEUED and replayed.id != failed.id
    assert command("replay_run", "--function", function.slug, "--status", "failed", "--dry-run").splitlines() == [
        f"would replay {failed.id}", "would replay 1 runs"]
    assert command("replay_run", "--function", function.slug, "--status", "completed").splitlines()[-1] == "replayed 1 runs"


def test_export_run_prints_the_run_with_its_steps_and_calls() -> None:
    run = ended_run(make_function(), RunStatus.COMPLETED, 1, "export")
    Step.objects.create(run=run, step_id="s1", name="charge", op="StepRun", output={"data": 42}, position=0)
    exported = json.loads(command("export_run", run.id))
    assert exported["id"] == run.id and exported["steps"][0]["output"] == {"data": 42}
    assert exported["events"][0]["name"] == "test/event" and exported["waits"] == []


def test_dead_letters_lists_retries_and_purges_undeliverable_runs() -> None:
    function = make_function()
    unreachable = ended_run(function, RunStatus.FAILED, 10, "dead")
    answered = ended_run(function, RunStatus.FAILED, 10, "answered")
    now = timezone.now()
    StepAttempt.objects.create(run=unreachable, step_target="step", attempt=4, status_code=None, started_at=now, ended_at=now,
                               error={"name": "Error", "message": "NewConnectionError: connection refused"})
    StepAttempt.objects.create(run=answered, step_target="step", attempt=0, status_code=500, started_at=now, ended_at=now,
                               error={"name": "ValueError", "message": "boom"})
    listing = command("dead_letters")
    assert unreachable.id in listing and answered.id not in listing and listing.endswith("1 dead letters\n")
    assert command("dead_letters", "--older-than", "30d").endswith("0 dead letters\n")
    assert command("dead_letters", "--retry") == listing.replace("1 dead letters\n", "replayed 1 dead letters\n")
    assert command("dead_letters", "--purge", "--dry-run").endswith("1 dead letters\n")
    assert command("dead_letters", "--purge").endswith("purged 1 dead letters\n")
    assert not Run.objects.filter(id=unreachable.id).exists() and Run.objects.filter(id=answered.id).exists()


def test_sync_apps_reports_each_app() -> None:
    App.objects.create(name="gone", url="http://127.0.0.1:9/api/inngest")
    out = command("sync_apps")
    assert out.splitlines()[-1] == "synced 0 of 1 apps"
    assert "unreachable" in App.objects.get(name="gone").error
