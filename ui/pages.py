"""The operator UI's pages: apps, functions, events. Read-only; runs are in ui/run_pages.py, the
actions in ui/actions.py.

Every list is one indexed query (plus one per related list, never one per row) and pages by
id, so the pages stay fast with hundreds of thousands of runs and events.
"""
from __future__ import annotations

import json
from typing import Any

from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from core.operator_access import operator_view
from events.models import Event
from events.queries import EventFilter
from functions.models import App, ExpressionFailure, Function
from runs.models import Run
from ui.error_view import read_error

PAGE = 50
RECENT_RUNS = 20


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
    return render_function(request, slug)


def render_function(request: HttpRequest, slug: str, send: dict | None = None, invoke: dict | None = None,
                    status: int = 200) -> HttpResponse:
    """The function page; the actions render it again with what was typed when a form is refused."""
    function = Function.objects.select_related("app").prefetch_related("triggers", _failures()).filter(slug=slug).first()
    if function is None:
        raise Http404("no such function")
    first_event = next((t.event_name for t in function.triggers.all() if t.event_name and "*" not in t.event_name), "")
    return render(request, "ui/function.html", {
        "function": function, "runs": recent_runs(function), "config": pretty(function.config), "nav": "functions",
        "send": send or {"name": first_event or "test/event", "data": "{}"}, "invoke": invoke or {"data": "{}"},
    }, status=status)


@operator_view
def function_runs(request: HttpRequest, slug: str) -> HttpResponse:
    """The function page's recent runs, fetched again every few seconds by htmx."""
    function = Function.objects.filter(slug=slug).first()
    if function is None:
        raise Http404("no such function")
    return render(request, "ui/_run_rows.html", {"runs": recent_runs(function)})


def recent_runs(function: Function) -> list[Run]:
    query = Run.objects.select_related("function", "event").filter(function=function).order_by("-id")
    return list(query.only(*RUN_COLUMNS)[:RECENT_RUNS])


# What the run tables show: no events, outputs or other large columns.
RUN_COLUMNS = ("id", "status", "flow_action", "created_at", "started_at", "ended_at", "rerun_of_id",
               "function__slug", "function__name", "event__name", "event__internal_id")


def _failures() -> Prefetch:
    """The function's expressions that failed to evaluate, latest first."""
    return Prefetch("expression_failures", queryset=ExpressionFailure.objects.order_by("-last_at"))


@operator_view
def events(request: HttpRequest) -> HttpResponse:
    selected = EventFilter.from_query(request.GET)
    rows = _events(selected)
    older = selected.query_string(before=rows[PAGE - 1].internal_id) if len(rows) > PAGE else ""
    return render(request, "ui/events.html", {
        "events": rows[:PAGE], "filter": selected, "older": older, "live_query": selected.query_string(), "nav": "events",
    })


@operator_view
def event_rows(request: HttpRequest) -> HttpResponse:
    """The stream's newest rows (with the page's filter), fetched again every few seconds by htmx."""
    selected = EventFilter.from_query(request.GET)
    return render(request, "ui/_event_rows.html", {"events": _events(EventFilter(selected.name, selected.internal))[:PAGE]})


def _events(selected: EventFilter) -> list[Event]:
    query = selected.apply(Event.objects.order_by("-internal_id"))
    return list(query.only("internal_id", "name", "received_at", "event_id")[:PAGE + 1])


@operator_view
def event_detail(request: HttpRequest, internal_id: str) -> HttpResponse:
    event = Event.objects.filter(internal_id=internal_id).first()
    if event is None:
        raise Http404("no such event")
    runs = Run.objects.select_related("function").filter(event=event).order_by("id")
    error = read_error(event.data.get("error")) if isinstance(event.data, dict) else None
    return render(request, "ui/event.html", {
        "event": event, "payload": pretty(event.as_payload()), "runs": runs, "error": error, "nav": "events",
    })


@operator_view
def send_event_page(request: HttpRequest) -> HttpResponse:
    """The send-event form on a page of its own (the nav's dialog posts here too)."""
    return render_send_event(request, {"name": "", "data": "{}", "id": ""})


def render_send_event(request: HttpRequest, values: dict, status: int = 200) -> HttpResponse:
    return render(request, "ui/send_event.html", {"values": values, "nav": "events"}, status=status)


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)
