"""What an operator can do from the UI: re-sync an app, send an event (from a function's page or
from anywhere), replay an event, invoke a function, cancel a run, rerun a run from the start or
from a step. Each is a POST that redirects on success (PRG); a refused form is shown again with
what was typed in it and the reason."""
from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from core.operator_access import operator_view
from events.models import Event
from functions.models import App, Function
from functions.sync_request import request_sync
from runs import lifecycle
from runs.intake import EventError, ingest
from runs.invokes import invoke_function
from runs.models import Run
from runs.reruns import RerunError, rerun
from ui.pages import render_function, render_send_event
from ui.run_pages import render_run


@require_POST
@operator_view
def resync_app(request: HttpRequest, app_id: str) -> HttpResponse:
    app = get_object_or_404(App, id=app_id)
    error = request_sync(app.url)
    if error:
        messages.error(request, f"Sync of {app.name} failed: {error}")
    else:
        messages.success(request, f"{app.name} synced")
    return redirect("ui:apps")


@require_POST
@operator_view
def send_event(request: HttpRequest, slug: str) -> HttpResponse:
    function = get_object_or_404(Function, slug=slug)
    typed = {"name": request.POST.get("name", "").strip(), "data": request.POST.get("data", "")}
    internal_id, problem = _send(typed["name"], typed["data"], "")
    if problem:
        messages.error(request, problem)
        return render_function(request, function.slug, send=typed, status=400)
    return redirect("ui:event", internal_id=internal_id)


@require_POST
@operator_view
def send_any_event(request: HttpRequest) -> HttpResponse:
    """The nav's "Send event": any name, data and optional id."""
    typed = {key: request.POST.get(key, "").strip() for key in ("name", "data", "id")}
    internal_id, problem = _send(typed["name"], typed["data"], typed["id"])
    if problem:
        messages.error(request, problem)
        return render_send_event(request, typed, status=400)
    return redirect("ui:event", internal_id=internal_id)


@require_POST
@operator_view
def replay_event(request: HttpRequest, internal_id: str) -> HttpResponse:
    """The same name, data and user as a new event (a new id, so it starts runs again)."""
    event = Event.objects.filter(internal_id=internal_id).first()
    if event is None:
        messages.error(request, "No such event")
        return redirect("ui:events")
    body = json.dumps({"name": event.name, "data": event.data, "user": event.user}).encode()
    internal_ids, problem = _ingest(body)
    if problem:
        messages.error(request, problem)
        return redirect("ui:event", internal_id=internal_id)
    messages.success(request, f"Replay of event {internal_id}")
    return redirect("ui:event", internal_id=internal_ids[0])


def _send(name: str, data_text: str, event_id: str) -> tuple[str, str]:
    """(the new event's internal id, "") or ("", why it was refused)."""
    data, problem = read_json_object(data_text)
    if problem:
        return "", problem
    if not name:
        return "", "Event refused: the name is required"
    event = {"name": name, "data": data, **({"id": event_id} if event_id else {})}
    internal_ids, problem = _ingest(json.dumps(event).encode())
    return (internal_ids[0] if internal_ids else ""), problem


def _ingest(body: bytes) -> tuple[list[str], str]:
    try:
        result = ingest(body)
    except EventError as exc:
        return [], f"Event refused: {exc}"
    if result.error or not result.ids:
        return [], f"Event refused: {result.error}"
    return result.ids, ""


@require_POST
@operator_view
def invoke(request: HttpRequest, slug: str) -> HttpResponse:
    function = get_object_or_404(Function, slug=slug, is_archived=False)
    typed = {"data": request.POST.get("data", "")}
    data, problem = read_json_object(typed["data"])
    if problem:
        messages.error(request, problem)
        return render_function(request, function.slug, invoke=typed, status=400)
    with transaction.atomic():
        event = invoke_function(function, {"data": data})
    return redirect("ui:event", internal_id=event.internal_id)


@require_POST
@operator_view
def cancel_run(request: HttpRequest, run_id: str) -> HttpResponse:
    run = get_object_or_404(Run.objects.select_related("function"), id=run_id)
    who = f"the UI ({request.user.username})" if request.user.is_authenticated else "the UI"
    if lifecycle.cancel_run(run, by=who):
        messages.success(request, "Run cancelled")
    else:
        messages.info(request, "The run had already ended")
    return redirect("ui:run", run_id=run.id)


@require_POST
@operator_view
def rerun_run(request: HttpRequest, run_id: str) -> HttpResponse:
    """From the start, or from a step (`step_id`): run it again, or take the edited `output` as its
    result when `use_output` is set."""
    run = get_object_or_404(Run.objects.select_related("function", "event"), id=run_id)
    step_id, use_output = request.POST.get("step_id", ""), request.POST.get("use_output") == "1"
    output = None
    if use_output:
        text = request.POST.get("output", "").strip()
        try:
            output = json.loads(text) if text else None
        except ValueError as exc:
            messages.error(request, f"The step output is not JSON: {exc}")
            return render_run(request, run.id, typed={"step_id": step_id, "output": text}, status=400)
    try:
        new_run = rerun(run, from_step_id=step_id, output=output, use_output=use_output)
    except RerunError as exc:
        messages.error(request, str(exc))
        return redirect("ui:run", run_id=run.id)
    return redirect("ui:run", run_id=new_run.id)


def read_json_object(text: str) -> tuple[dict[str, Any], str]:
    """The JSON object typed in a form ("" reads as {}), or why it is not one."""
    try:
        value = json.loads(text.strip() or "{}")
    except ValueError as exc:
        return {}, f"The data is not JSON: {exc}"
    if not isinstance(value, dict):
        return {}, "The data must be a JSON object"
    return value, ""
