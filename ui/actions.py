"""What an operator can do from the UI: re-sync an app, send a test event, invoke a function,
cancel a run, rerun a run from the start. Each is a POST that redirects back (PRG)."""
from __future__ import annotations

import json

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from core.operator_access import operator_view
from functions.models import App, Function
from functions.sync_request import request_sync
from runs import lifecycle
from runs.intake import EventError, ingest
from runs.invokes import invoke_function
from runs.maintenance import replay
from runs.models import Run


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
    data = _json_object(request, "data")
    if data is None:
        return redirect("ui:function", slug=function.slug)
    body = json.dumps({"name": request.POST.get("name", "").strip(), "data": data}).encode()
    try:
        result = ingest(body)
    except EventError as exc:
        messages.error(request, f"Event refused: {exc}")
        return redirect("ui:function", slug=function.slug)
    if result.error or not result.ids:
        messages.error(request, f"Event refused: {result.error}")
        return redirect("ui:function", slug=function.slug)
    return redirect("ui:event", internal_id=result.ids[0])


@require_POST
@operator_view
def invoke(request: HttpRequest, slug: str) -> HttpResponse:
    function = get_object_or_404(Function, slug=slug, is_archived=False)
    data = _json_object(request, "data")
    if data is None:
        return redirect("ui:function", slug=function.slug)
    with transaction.atomic():
        event = invoke_function(function, {"data": data})
    return redirect("ui:event", internal_id=event.internal_id)


@require_POST
@operator_view
def cancel_run(request: HttpRequest, run_id: str) -> HttpResponse:
    run = get_object_or_404(Run.objects.select_related("function"), id=run_id)
    if lifecycle.cancel_run(run):
        messages.success(request, "Run cancelled")
    else:
        messages.info(request, "The run had already ended")
    return redirect("ui:run", run_id=run.id)


@require_POST
@operator_view
def rerun(request: HttpRequest, run_id: str) -> HttpResponse:
    """A new run of the same function with the same events, from the first step."""
    run = get_object_or_404(Run.objects.select_related("function", "event"), id=run_id)
    new_run = replay(run)
    messages.success(request, f"Rerun of {run.id}")
    return redirect("ui:run", run_id=new_run.id)


def _json_object(request: HttpRequest, field: str) -> dict | None:
    text = request.POST.get(field, "").strip() or "{}"
    try:
        value = json.loads(text)
    except ValueError as exc:
        messages.error(request, f"The data is not JSON: {exc}")
        return None
    if not isinstance(value, dict):
        messages.error(request, "The data must be a JSON object")
        return None
    return value
