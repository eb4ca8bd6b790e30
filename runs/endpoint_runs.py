"""Runs of Durable Endpoints (functions/endpoints.py): started by the app's own HTTP request, which
runs the steps and checkpoints them while the server only records them.

Such a run has one pending discovery call, due when the endpoint would have gone silent for too
long (INNGEST_ENDPOINT_RESUME_SECONDS): each checkpoint pushes it back. If the request dies (its
process crashed), the call comes due and the server resumes the run by calling the endpoint, as it
does when the run goes async (a sleep, a wait, a retry)."""
from __future__ import annotations

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from ulid import ULID

from events.models import Event
from executor import metrics
from functions.models import Function
from runs.models import PendingCall, Run, RunStatus

HTTP_REQUEST_EVENT = "inngest/http.request"  # the event an endpoint run starts with (the SDK names it)


class RunExists(Exception):
    pass


def start_endpoint_run(function: Function, run_id: str, event: dict, request_version: int, resume_at: datetime,
                       now: datetime) -> Run:
    """The run, running from the start (its request is running it), with its resume call."""
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    internal_id = str(ULID())
    ts = event.get("ts") if type(event.get("ts")) is int else int(now.timestamp() * 1000)
    try:
        with transaction.atomic():
            row = Event.objects.create(internal_id=internal_id, name=HTTP_REQUEST_EVENT, event_id=internal_id, data=data,
                                       user={}, ts=ts, received_at=now)
            run = Run.objects.create(id=run_id, function=function, event=row, events=[row.as_payload()],
                                     status=RunStatus.RUNNING, request_version=request_version, created_at=now, started_at=now)
            PendingCall.objects.create(run=run, step_target="step", attempt=0, due_at=resume_at)
    except IntegrityError:
        raise RunExists(run_id) from None
    metrics.count("inngest_runs_started", function.slug)
    return run


def claim_endpoint_call(run_id: str, owner: str, lease_seconds: float, now: datetime) -> PendingCall | None:
    """Take the run's discovery call for a checkpoint of its endpoint, whenever it is due; None
    when the run has none free (it ended, or a worker is calling the endpoint right now)."""
    claimed = (
        PendingCall.objects.filter(run_id=run_id, step_target="step")
        .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now))
        # Due now while held: what the checkpoint leaves of it (a discovery the SDK asks for) is
        # made at once; a call rescheduled by the checkpoint is a new row anyway.
        .update(lease_owner=owner, lease_expires_at=now + timedelta(seconds=lease_seconds), parked_on="",
                generation=F("generation") + 1, due_at=now)
    )
    if not claimed:
        return None
    return PendingCall.objects.select_related("run", "run__function").filter(run_id=run_id, step_target="step").first()
