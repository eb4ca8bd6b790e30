"""What operators do to the run history: prune old runs, requeue stuck ones, replay, export,
and look at dead letters. The management commands and the daily beat task call these."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from events.models import Event
from runs import pending_calls
from runs.models import ACTIVE_STATUSES, PendingCall, Run, RunIdempotencyKey, RunStatus, StepAttempt, Wait
from runs.reruns import rerun

PRUNE_BATCH = 1_000


@dataclass(frozen=True)
class PruneResult:
    runs: int
    events: int
    keys: int


def prune(cutoff: datetime, dry_run: bool = False) -> PruneResult:
    """Delete runs that ended before `cutoff` (with their steps, calls and waits), events received
    before it that no remaining run points to, and expired idempotency keys. In batches, so no
    transaction holds locks for long."""
    ended = Run.objects.filter(ended_at__lt=cutoff).exclude(status__in=ACTIVE_STATUSES)
    live_runs = Run.objects.filter(event_id=OuterRef("pk")).filter(Q(ended_at__isnull=True) | Q(ended_at__gte=cutoff))
    old_events = Event.objects.filter(received_at__lt=cutoff).exclude(Exists(live_runs))
    keys = RunIdempotencyKey.objects.filter(expires_at__lt=timezone.now())
    if dry_run:
        return PruneResult(ended.count(), old_events.count(), keys.count())
    return PruneResult(_delete_in_batches(ended), _delete_in_batches(old_events), keys.delete()[0])


def _delete_in_batches(query) -> int:
    total = 0
    while True:
        ids = list(query.values_list("pk", flat=True)[:PRUNE_BATCH])
        if not ids:
            return total
        with transaction.atomic():
            query.model.objects.filter(pk__in=ids).delete()
        total += len(ids)


@dataclass(frozen=True)
class StuckRuns:
    lost_calls: list[int]  # due calls nobody holds and no message is known to be in flight for
    orphans: list[str]  # active runs with no pending call and nothing to wait for


def find_stuck(now: datetime | None = None) -> StuckRuns:
    now = now or timezone.now()
    lost = PendingCall.objects.filter(pending_calls.unsent_due_calls(now, pending_calls.queue_waiting_since()), parked_on="")
    orphans = Run.objects.filter(status__in=ACTIVE_STATUSES, created_at__lt=now - pending_calls.lost_message_after()).exclude(
        Exists(PendingCall.objects.filter(run_id=OuterRef("pk")))
    ).exclude(Exists(Wait.objects.filter(run_id=OuterRef("pk"))))
    return StuckRuns(list(lost.values_list("id", flat=True)[:10_000]), list(orphans.values_list("id", flat=True)[:10_000]))


def requeue_stuck(now: datetime | None = None) -> StuckRuns:
    """Send the lost calls again, and give orphaned runs a discovery call (the SDK replays them
    from their memoized steps, so nothing already done is done twice)."""
    now = now or timezone.now()
    stuck = find_stuck(now)
    if stuck.lost_calls:
        pending_calls.resend_calls(stuck.lost_calls, now)
    if stuck.orphans:
        # No message: rows never enqueued are what the sweeper sends on its next tick.
        pending_calls.add_unsent_calls(stuck.orphans, now)
    return stuck


def replay(run: Run) -> Run:
    """A new run of the same function with the same events, from the first step, linked to `run`."""
    return rerun(run)


def runs_to_replay(function_slug: str, since: datetime | None, until: datetime | None, status: str = "") -> list[Run]:
    runs = Run.objects.select_related("function", "event").filter(function__slug=function_slug)
    if since:
        runs = runs.filter(created_at__gte=since)
    if until:
        runs = runs.filter(created_at__lt=until)
    if status:
        runs = runs.filter(status=status)
    return list(runs.order_by("id"))


def export(run: Run) -> str:
    """The run as JSON: its fields, events, memoized steps, every call and its open waits."""
    from runs.api.operator import RunDetailSerializer  # the API's shape, so exports and the API agree

    data = dict(RunDetailSerializer(run).data)
    data["waits"] = list(Wait.objects.filter(run=run).values("kind", "step_id", "event_name", "expression", "expires_at"))
    return json.dumps(data, cls=DjangoJSONEncoder, indent=2)


def dead_letters(older_than: timedelta | None = None) -> list[Run]:
    """Failed runs whose last call got no HTTP answer at all: the app could not be reached."""
    last_attempt = StepAttempt.objects.filter(run_id=OuterRef("pk")).order_by("-started_at", "-id")
    runs = Run.objects.select_related("function").filter(status=RunStatus.FAILED).annotate(
        last_status=last_attempt.values("status_code")[:1], last_error=last_attempt.values("error")[:1],
    ).filter(last_status__isnull=True).exclude(last_error__isnull=True)
    if older_than is not None:
        runs = runs.filter(ended_at__lt=timezone.now() - older_than)
    return list(runs.order_by("-id"))
