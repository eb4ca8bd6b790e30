"""Durable Endpoints' API (executor/endpoints.py), request by request as the JS SDK sends them:
the run's start, its checkpoints read as a call's answer, and the output behind the run's token."""
from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import pytest
from django.test import Client, override_settings
from django.utils import timezone
from ulid import ULID

from executor.endpoints import COMPLETE_STEP_ID, output_token
from functions.models import Function
from runs.models import PendingCall, Run, RunStatus, Step, Wait

pytestmark = pytest.mark.django_db
ORIGIN = "http://127.0.0.1:4321"


def post(path: str, body: object) -> tuple[int, dict]:
    answer = Client().post(path, data=json.dumps(body), content_type="application/json")
    return answer.status_code, answer.json()


def new_run(steps: list | None = None, path: str = "/api/orders", run_id: str | None = None) -> tuple[int, dict]:
    event = {"name": "inngest/http.request", "data": {"domain": ORIGIN, "method": "POST", "path": path, "fn": "",
                                                       "query_params": "id=7", "body": '{"n": 1}', "content_type": "application/json",
                                                       "ip": "127.0.0.1"}}
    return post("/v1/checkpoint", {"run_id": run_id or str(ULID()), "event": event, "steps": steps or [], "ts": 0,
                                   "request_version": 2, "retries": 2})


def step_run(name: str, data: object) -> dict:
    return {"op": "StepRun", "id": hashlib.sha1(name.encode()).hexdigest(), "name": name, "displayName": name, "data": data}


def test_the_first_checkpoint_starts_a_running_run_of_the_routes_function() -> None:
    status, body = new_run([step_run("a", 1)])
    assert status == 200
    data = body["data"]
    assert set(data) == {"fn_id", "app_id", "run_id", "token", "realtime_token"}
    function = Function.objects.select_related("app").get(id=data["fn_id"])
    assert (function.app.name, function.slug, function.retries) == (ORIGIN, f"{ORIGIN}-POST /api/orders", 2)
    run = Run.objects.get(id=data["run_id"])
    assert run.status == RunStatus.RUNNING and run.events[0]["data"]["path"] == "/api/orders"
    assert list(Step.objects.filter(run=run).values_list("name", "output")) == [("a", {"data": 1})]
    (call,) = PendingCall.objects.filter(run=run)  # resumes the run if the request goes silent
    assert call.step_target == "step" and call.due_at > timezone.now() + timedelta(minutes=5) and not call.lease_owner
    assert new_run(run_id=data["run_id"])[0] == 409
    assert new_run(path="/api/other")[1]["data"]["fn_id"] != data["fn_id"]  # another route, another function


@pytest.mark.parametrize("body, problem", [
    ({"run_id": "nope"}, "run_id"),
    ({"run_id": str(ULID()), "event": {"data": {"domain": ORIGIN}}}, "domain, method and path"),
], ids=["run id", "route"])
def test_a_start_without_a_run_id_or_route_is_a_bad_request(body: dict, problem: str) -> None:
    status, answer = post("/v1/checkpoint", body)
    assert status == 400 and problem in answer["error"]


def test_the_handlers_response_completes_the_run_and_is_its_output() -> None:
    run_id = new_run()[1]["data"]["run_id"]
    response = {"status": 201, "headers": {"content-type": "text/plain"}, "body": "made"}
    steps = [step_run("b", 2), {"op": "RunComplete", "id": COMPLETE_STEP_ID, "data": response}]
    assert post(f"/v1/checkpoint/{run_id}/steps", {"run_id": run_id, "steps": steps})[0] == 200
    run = Run.objects.get(id=run_id)
    assert run.status == RunStatus.COMPLETED and run.output == response
    assert not PendingCall.objects.filter(run=run).exists()
    output = Client().get(f"/v1/http/runs/{run_id}/output", {"token": output_token(run_id)})
    assert output.status_code == 200 and output.content == b"made" and output["Content-Type"] == "text/plain"
    assert post(f"/v1/checkpoint/{run_id}/steps", {"steps": [step_run("c", 3)]})[0] == 409  # it has ended


def test_a_sleep_takes_the_run_async_and_a_handler_error_is_retried_by_the_server() -> None:
    run_id = new_run([step_run("a", 1)])[1]["data"]["run_id"]
    sleep = {"op": "Sleep", "id": hashlib.sha1(b"nap").hexdigest(), "name": "1s", "displayName": "nap", "opts": {"duration": "1s"}}
    assert post(f"/v1/checkpoint/{run_id}/steps", {"steps": [sleep]})[0] == 200
    assert Wait.objects.filter(run_id=run_id, kind="sleep").exists() and not PendingCall.objects.filter(run_id=run_id).exists()

    failing = new_run()[1]["data"]["run_id"]
    error = {"op": "StepError", "id": COMPLETE_STEP_ID, "error": {"name": "Error", "message": "boom"}}
    assert post(f"/v1/checkpoint/{failing}/steps", {"steps": [error]})[0] == 200
    (retry,) = PendingCall.objects.filter(run_id=failing)
    assert (retry.step_target, retry.attempt) == ("step", 1) and Run.objects.get(id=failing).status == RunStatus.RUNNING

    final = new_run()[1]["data"]["run_id"]
    error["op"] = "StepFailed"
    assert post(f"/v1/checkpoint/{final}/steps", {"steps": [error]})[0] == 200
    run = Run.objects.get(id=final)
    assert run.status == RunStatus.FAILED and run.output == {"name": "Error", "message": "boom"}


@override_settings(INNGEST_ENDPOINT_OUTPUT_WAIT_SECONDS=0.3)
def test_the_output_needs_the_runs_token_and_says_when_the_run_is_still_running() -> None:
    run_id = new_run()[1]["data"]["run_id"]
    other = new_run()[1]["data"]["run_id"]
    assert Client().get(f"/v1/http/runs/{run_id}/output", {"token": output_token(other)}).status_code == 401
    assert Client().get(f"/v1/http/runs/{run_id}/output", {"token": "forged"}).status_code == 401
    waiting = Client().get(f"/v1/http/runs/{run_id}/output", {"token": output_token(run_id)})
    assert waiting.status_code == 200 and waiting.json()["status"] == "running"


def test_checkpoints_of_an_unknown_run_are_404() -> None:
    run_id = str(ULID())
    assert post(f"/v1/checkpoint/{run_id}/steps", {"steps": [step_run("a", 1)]})[0] == 404
