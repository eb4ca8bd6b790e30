"""Runs of Durable Endpoints (functions/endpoints.py): started by the app's own HTTP request, which
runs the steps and checkpoints them while the server only records them.

Such a run has one pending discovery call, due when the endpoint would have gone silent for too
long (INNGEST_ENDPOINT_RESUME_SECONDS): each checkpoint pushes it back. If the request dies (its
process crashed), the call comes due and the server resumes the run by calling the endpoint, as it
does when the run goes async (a sleep, a wait, a retry)."""
from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction
from ulid import ULID

from core import metrics
from events.models import Event
from functions.models import Function
from runs import pending_calls
from runs.models import Run, RunStatus

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
            pending_calls.add_resume_call(run.id, resume_at)
    except IntegrityError:
        raise RunExists(run_id) from None
    metrics.count("inngest_runs_started", function.slug)
    return run
