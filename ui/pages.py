"""The operator UI's pages: apps, functions, events, runs. Read-only; the actions are in ui/actions.py.

Every list is one indexed query (plus one per related list, never one per row) and pages by
id, so the pages stay fast with hundreds of thousands of runs.
"""
from __future__ import annotations

import json
from typing import Any

from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from core.operator_access import operator_view
from events.models import Event
from functions.models import App, ExpressionFailure, Function
from runs.models import FlowAction, Run, RunStatus
from runs.queries import RunFilter
from ui.timeline import build_timeline

PAGE = 50


def home(request: HttpRequest) -> HttpResponse:
    return redirect("ui:runs")


@operator_view
def apps(request: HttpRequest) -> HttpResponse:
    active = Prefetch("functions", queryset=Function.objects.filter(is_archived=False).order_by("slug"))
    rows = App.objects.prefetch_related(active).order_by("name")
    return render(request, "ui/apps.html", {"apps": rows, "nav": "apps"})


@operator_view
def functions(request: HttpRequest) -> HttpResponse:
    rows = (Function.objects.select_related("app").prefetch_related("triggers", _failures())
            .filter(is_archived=False).order_by("slug"))
    return render(request, "ui/functions.html", {"functions": rows, "nav": "functions"})


@operator_view
def function_detail(request: HttpRequest, slug: str) -> HttpResponse:
    function = Function.objects.select_related("app").prefetch_related("triggers", _failures()).filter(slug=slug).first()
    if function is None:
        raise Http404("no such function")
    recent = Run.objects.select_related("event").filter(function=function).order_by("-id")[:20]
    first_event = next((t.event_name for t in function.triggers.all() if t.event_name and "*" not in t.event_name), "")
    return render(request, "ui/function.html", {
        "function": function, "runs": recent, "config": _pretty(function.config), "nav": "functions",
        "test_event": first_event or "test/event",
    })


def _failures() -> Prefetch:
    """The function's expressions that failed to evaluate, latest first."""
    return Prefetch("expression_failures", queryset=ExpressionFailure.objects.order_by("-last_at"))


@operator_view
def events(request: HttpRequest) -> HttpResponse:
    return render(request, "ui/events.html", {"events": _latest_events(), "nav": "events"})


@operator_view
def event_rows(request: HttpRequest) -> HttpResponse:
    """The stream's rows, fetched again every few seconds by htmx."""
    return render(request, "ui/_event_rows.html", {"events": _latest_events()})


def _latest_events() -> list[Event]:
    return list(Event.objects.order_by("-received_at", "-id").only("internal_id", "name", "received_at", "event_id")[:PAGE])


@operator_view
def event_detail(request: HttpRequest, internal_id: str) -> HttpResponse:
    event = Event.objects.filter(internal_id=internal_id).first()
    if event is None:
        raise Http404("no such event")
    runs = Run.objects.select_related("function").filter(event=event).order_by("id")
    return render(request, "ui/event.html", {"event": event, "payload": _pretty(event.as_payload()), "runs": runs, "nav": "events"})


@operator_view
def runs(request: HttpRequest) -> HttpResponse:
    selected = RunFilter.from_query(request.GET)
    query = selected.apply(Run.objects.select_related("function", "event").order_by("-id"))
    rows = list(query.only(
        "id", "status", "flow_action", "created_at", "started_at", "ended_at", "function__slug", "event__name",
        "event__internal_id",
    )[:PAGE + 1])
    next_page = selected.next_page(rows[PAGE - 1].id) if len(rows) > PAGE else ""
    return render(request, "ui/runs.html", {
        "runs": rows[:PAGE], "filter": selected, "next_page": next_page, "statuses": RunStatus.choices,
        "function_slugs": Function.objects.filter(is_archived=False).order_by("slug").values_list("slug", flat=True),
        "nav": "runs",
    })


@operator_view
def run_detail(request: HttpRequest, run_id: str) -> HttpResponse:
    run = Run.objects.select_related("function", "event").filter(id=run_id).first()
    if run is None:
        raise Http404("no such run")
    return render(request, "ui/run.html", {
        "run": run, "timeline": build_timeline(run), "output": _pretty(run.output),
        "events": [_pretty(e) for e in run.events or []], "is_active": not run.is_terminal,
        "was_held": run.flow_action in (FlowAction.DELAYED, FlowAction.SKIPPED, FlowAction.CANCELLED), "nav": "runs",
    })


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)
