"""The runs list and a run's page, each with a fragment htmx fetches again while something can
change: the list's first page every few seconds, a run's page until the run ends (the fragment
of an ended run carries no poll, so the polling stops by itself)."""
from __future__ import annotations

from urllib.parse import urlencode

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from functions.models import Function
from runs.models import FlowAction, Run, RunDefer, RunStatus, Step
from runs.queries import RunFilter
from runs.reruns import RERUNNABLE_OPS
from runs.run_metadata import folded_metadata
from core.operator_access import operator_view
from ui.error_view import read_error
from ui.pages import PAGE, RUN_COLUMNS, pretty
from ui.waterfall import build_waterfall

MAX_RERUNS_LISTED = 20


@operator_view
def runs(request: HttpRequest) -> HttpResponse:
    selected = RunFilter.from_query(request.GET)
    rows = _runs(selected)
    next_page = selected.next_page(rows[PAGE - 1].id) if len(rows) > PAGE else ""
    return render(request, "ui/runs.html", {
        "runs": rows[:PAGE], "filter": selected, "next_page": next_page, "statuses": RunStatus.choices,
        "function_slugs": Function.objects.filter(is_archived=False).order_by("slug").values_list("slug", flat=True),
        "is_live": not selected.before, "live_query": request.GET.urlencode(), "nav": "runs",
        "newest_query": urlencode({k: v for k, v in request.GET.items() if k != "before"}),
    })


@operator_view
def run_rows(request: HttpRequest) -> HttpResponse:
    """The first page of the list (with its filter) again: new runs and changed statuses."""
    selected = RunFilter.from_query(request.GET)
    return render(request, "ui/_run_rows.html", {"runs": _runs(selected)[:PAGE]})


def _runs(selected: RunFilter) -> list[Run]:
    query = selected.apply(Run.objects.select_related("function", "event").order_by("-id"))
    return list(query.only(*RUN_COLUMNS)[:PAGE + 1])


@operator_view
def run_detail(request: HttpRequest, run_id: str) -> HttpResponse:
    return render_run(request, run_id)


def render_run(request: HttpRequest, run_id: str, typed: dict | None = None, status: int = 200) -> HttpResponse:
    """The run's page; a refused rerun form is shown again open, with the output as typed."""
    context = _run_context(run_id)
    if typed:
        for step in context["rerunnable_steps"]:
            if step["step_id"] == typed["step_id"]:
                step.update(output=typed["output"], is_open=True)
    return render(request, "ui/run.html", context, status=status)


@operator_view
def run_live(request: HttpRequest, run_id: str) -> HttpResponse:
    """What changes on a run's page while it runs; an ended run's answer has no poll in it."""
    return render(request, "ui/_run_live.html", _run_context(run_id))


def _run_context(run_id: str) -> dict:
    run = Run.objects.select_related("function", "event", "rerun_of").filter(id=run_id).first()
    if run is None:
        raise Http404("no such run")
    now = timezone.now()
    waterfall = build_waterfall(run, now)
    return {
        "run": run, "waterfall": waterfall, "now": now, "is_active": not run.is_terminal,
        "output": pretty(run.output), "error": read_error(run.output) if run.status == RunStatus.FAILED else None,
        "events": [pretty(e) for e in run.events or []],
        "reruns": list(Run.objects.filter(rerun_of=run).order_by("-id").only("id", "status", "rerun_from_step")[:MAX_RERUNS_LISTED]),
        "rerunnable_steps": _rerunnable_steps(run),
        "metadata": [{**entry, "pretty": pretty(entry["values"])} for entry in folded_metadata(run.id)],
        "defers": list(RunDefer.objects.filter(run=run).order_by("id")),
        "was_held": run.flow_action in (FlowAction.DELAYED, FlowAction.SKIPPED, FlowAction.CANCELLED), "nav": "runs",
    }


def _rerunnable_steps(run: Run) -> list[dict]:
    """The steps a rerun can start at, with their output as the editable JSON (ended runs only)."""
    if not run.is_terminal:
        return []
    steps = Step.objects.filter(run=run, op__in=RERUNNABLE_OPS).order_by("position").only("step_id", "name", "op", "output")
    return [{"step_id": s.step_id, "name": s.name or s.step_id, "output": pretty(_data_of(s.output))} for s in steps]


def _data_of(memo: object) -> object:
    return memo.get("data") if isinstance(memo, dict) and "data" in memo else memo
