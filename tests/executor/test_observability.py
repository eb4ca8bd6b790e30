"""Log lines about a run carry its ids; /metrics counts move as runs happen (both modes)."""
from __future__ import annotations

import logging

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from executor.log_context import RunContextFilter
from executor.run_loop import run_call
from runs import creation
from tests.factories import make_function
from tests.stacks import wait_for


@pytest.mark.django_db
def test_every_log_line_of_a_call_names_its_run_function_and_step(caplog: pytest.LogCaptureFixture) -> None:
    function = make_function()  # its URL answers nothing: the call fails and is retried
    (run,) = creation.create_runs([creation.RunRequest(function, None, [{"name": "test/event", "data": {}}], "k")])
    caplog.handler.addFilter(RunContextFilter())
    caplog.set_level(logging.DEBUG, logger="executor")
    run_call(run.pending_calls.get().id)
    records = [r for r in caplog.records if r.name.startswith("executor")]
    assert records
    assert {(r.run_id, r.function_id, r.step_id) for r in records} == {(run.id, function.slug, "step")}
    logging.getLogger("executor").info("after the call")
    assert caplog.records[-1].run_id == "-"  # the context ends with the call


def scrape(base_url: str) -> dict[tuple, float]:
    text = requests.get(f"{base_url}/metrics", timeout=10).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text) for sample in family.samples
    }


@pytest.mark.e2e
def test_metrics_count_events_runs_and_calls_as_they_happen(stack) -> None:
    server, app = stack
    slug = f"{app.app_id}-three-steps"
    before = scrape(server.base_url)
    run = server.run_once({"name": "test/three-steps", "data": {"start": 1}})
    assert run["status"] == "Completed"
    after: dict = {}

    def moved(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    def counted() -> bool:
        after.update(scrape(server.base_url))  # each process writes its counts within a second
        return moved("inngest_runs_ended_total", function=slug, status="completed") >= 1 and moved("inngest_events_received_total") >= 1

    wait_for(counted, timeout=10, what="the event and the run's end to be counted")

    assert moved("inngest_events_received_total") >= 1
    assert moved("inngest_runs_started_total", function=slug) >= 1
    assert moved("inngest_runs_ended_total", function=slug, status="completed") >= 1
    assert moved("inngest_step_calls_total", function=slug, outcome="StepRun") >= 3
    assert moved("inngest_step_call_seconds_count", function=slug) >= 4
    assert ("inngest_queue_depth", (("state", "due"),)) in after
