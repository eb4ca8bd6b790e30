"""Bulk cancellation, `DELETE /v0/runs/{id}`, and the start timeout."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from runs import creation
from runs.cancellations import expire_timeouts
from runs.models import Cancellation, Run, RunStatus, Wait
from tests.factories import make_function

pytestmark = pytest.mark.django_db


def start(function, plan: str) -> Run:
    (run,) = creation.create_runs([creation.RunRequest(function, None, [{"name": "e", "data": {"plan": plan}}], plan)])
    return run


def post(client: Client, body: dict):
    return client.post("/v1/cancellations", data=json.dumps(body), content_type="application/json")


def test_bulk_cancellation_cancels_matching_runs_in_the_window(client: Client) -> None:
    function = make_function()
    free, pro = start(function, "free"), start(function, "pro")
    answer = post(client, {"app_id": "factory-app", "function_id": function.slug,
                           "started_before": (timezone.now() + timedelta(seconds=1)).isoformat(),
                           "if": "event.data.plan == 'pro'"})
    assert answer.status_code == 200, answer.content
    data = answer.json()["data"]
    assert data["function_id"] == function.slug and data["cancelled_runs"] == 1
    assert Run.objects.get(id=pro.id).status == RunStatus.CANCELLED
    assert Run.objects.get(id=pro.id).cancelled_by.startswith("bulk cancellation")  # said on the run's page
    assert Run.objects.get(id=free.id).status == RunStatus.QUEUED
    assert [c["id"] for c in client.get("/v1/cancellations").json()["data"]] == [data["id"]]
    assert client.delete(f"/v1/cancellations/{data['id']}").json() == {"data": {"ok": True}}
    assert not Cancellation.objects.exists()


@pytest.mark.parametrize("body, status, message", [
    ({"function_id": "x", "started_before": "2026-01-01T00:00:00Z"}, 400, "missing fields: app_id"),
    ({"app_id": "a", "function_id": "nope", "started_before": "2026-01-01T00:00:00Z"}, 404, "function not found: nope"),
], ids=["missing field", "unknown function"])
def test_bad_bulk_cancellation_is_refused(client: Client, body: dict, status: int, message: str) -> None:
    answer = post(client, body)
    assert answer.status_code == status and answer.json()["error"] == message


def test_bulk_cancellation_with_an_invalid_expression_is_a_400(client: Client) -> None:
    function = make_function()
    answer = post(client, {"app_id": "a", "function_id": function.slug, "started_before": timezone.now().isoformat(),
                           "if": "event.data =="})
    assert answer.status_code == 400 and "invalid expression" in answer.json()["error"]


def test_legacy_delete_cancels_with_204(client: Client) -> None:
    run = start(make_function(), "x")
    assert client.delete(f"/v0/runs/{run.id}").status_code == 204
    assert Run.objects.get(id=run.id).status == RunStatus.CANCELLED
    assert Run.objects.get(id=run.id).cancelled_by == "the REST API (DELETE of the run)"
    assert client.delete("/v0/runs/01HNOSUCHRUN0000000000000").status_code == 404


def test_run_not_started_within_its_start_timeout_is_cancelled() -> None:
    function = make_function()
    function.config = {"timeouts": {"start": "1s"}}
    function.save()
    run = start(function, "late")
    assert Wait.objects.filter(run=run, kind="timeout").exists()
    assert expire_timeouts(timezone.now()) == 0  # not due yet
    assert expire_timeouts(timezone.now() + timedelta(seconds=2)) == 1
    assert Run.objects.get(id=run.id).status == RunStatus.CANCELLED
    assert Run.objects.get(id=run.id).cancelled_by == "timeouts.start (the function's timeout ran out)"
