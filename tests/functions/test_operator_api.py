"""The operator REST API (/api/v1) and its OpenAPI schema: each endpoint, its errors, and auth."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client, override_settings
from rest_framework.authtoken.models import Token

from events.models import Event
from runs.models import Run, Step, StepAttempt

pytestmark = pytest.mark.django_db
APP_URL = "http://127.0.0.1:9/api/inngest"


def register(client: Client, **overrides: object):
    body = {"app": "billing", "url": APP_URL, "functions": [
        {"id": "billing-charge", "name": "Charge", "triggers": [{"event": "billing/charge"}], "concurrency": 2},
    ]} | overrides
    return client.post("/api/v1/functions", body, content_type="application/json")


@override_settings(INNGEST_OPERATOR_LOGIN=False)
def test_functions_are_registered_by_url_and_listed() -> None:
    client = Client()
    answer = register(client)
    assert answer.status_code == 201
    (function,) = answer.json()["data"]
    assert function["slug"] == "billing-charge" and function["app"] == "billing"
    assert function["url"] == f"{APP_URL}?fnId=billing-charge&stepId=step"
    assert function["triggers"] == [{"event": "billing/charge", "expression": "", "cron": ""}]
    assert function["config"]["concurrency"] == 2
    assert [f["slug"] for f in client.get("/api/v1/functions").json()["data"]] == ["billing-charge"]


@override_settings(INNGEST_OPERATOR_LOGIN=False)
@pytest.mark.parametrize(("overrides", "error"), [
    ({"url": "not a url"}, "Enter a valid URL."),
    ({"functions": []}, "This list may not be empty."),
    ({"functions": [{"id": "x", "name": "X", "concurrency": {"limit": 1, "scope": "env"}}]}, "At least one function is invalid"),
])
def test_bad_registrations_are_refused_with_400(overrides: dict, error: str) -> None:
    answer = register(Client(), **overrides)
    assert answer.status_code == 400 and error in answer.content.decode()


@override_settings(INNGEST_OPERATOR_LOGIN=False)
def test_events_sent_through_the_api_start_runs_that_the_api_lists_and_shows() -> None:
    client = Client()
    register(client)
    answer = client.post("/api/v1/events", [{"name": "billing/charge", "data": {"n": i}} for i in range(3)],
                         content_type="application/json")
    assert answer.status_code == 200 and len(answer.json()["ids"]) == 3
    runs = client.get("/api/v1/runs", {"function": "billing-charge"}).json()
    assert len(runs["data"]) == 3 and runs["next"] is None
    assert {r["event_name"] for r in runs["data"]} == {"billing/charge"}
    assert client.get("/api/v1/runs", {"status": "completed"}).json()["data"] == []

    run = Run.objects.get(id=runs["data"][0]["id"])
    Step.objects.create(run=run, step_id="abc", name="charge", op="StepRun", output={"data": 1}, position=0)
    StepAttempt.objects.create(run=run, step_target="step", attempt=0, status_code=206, opcode="StepRun",
                               started_at=run.created_at, ended_at=run.created_at)
    detail = client.get(f"/api/v1/runs/{run.id}").json()["data"]
    assert detail["steps"][0]["name"] == "charge" and detail["attempts"][0]["opcode"] == "StepRun"
    assert detail["events"][0]["data"]["n"] in (0, 1, 2)
    assert client.get("/api/v1/runs/01NOSUCHRUN0000000000000000").status_code == 404


@override_settings(INNGEST_OPERATOR_LOGIN=False)
def test_bad_events_are_refused_with_the_event_api_error_shape() -> None:
    answer = Client().post("/api/v1/events", [{"name": ""}], content_type="application/json")
    assert answer.status_code == 400 and answer.json()["ids"] == [] and answer.json()["error"]
    assert not Event.objects.exists()


@override_settings(INNGEST_OPERATOR_LOGIN=False)
def test_runs_are_paged_with_a_cursor() -> None:
    client = Client()
    register(client)
    client.post("/api/v1/events", [{"name": "billing/charge"} for _ in range(60)], content_type="application/json")
    first = client.get("/api/v1/runs").json()
    assert len(first["data"]) == 50 and first["next"]
    second = client.get("/api/v1/runs", {"before": first["next"]}).json()
    assert len(second["data"]) == 10 and second["next"] is None
    assert not {r["id"] for r in first["data"]} & {r["id"] for r in second["data"]}


@override_settings(INNGEST_OPERATOR_LOGIN=True)
def test_production_needs_a_token() -> None:
    client = Client()
    assert client.get("/api/v1/runs").status_code == 401
    token = Token.objects.create(user=User.objects.create_user("ops"))
    assert client.get("/api/v1/runs", HTTP_AUTHORIZATION=f"Token {token.key}").status_code == 200
    assert client.get("/api/v1/runs", HTTP_AUTHORIZATION="Token wrong").status_code == 401


def test_the_openapi_schema_documents_the_operator_api_and_the_docs_page_is_served() -> None:
    client = Client()
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert set(schema["paths"]) == {"/api/v1/functions", "/api/v1/events", "/api/v1/runs", "/api/v1/runs/{run_id}"}
    docs = client.get("/api/docs/")
    assert docs.status_code == 200 and b"swagger-ui" in docs.content


@override_settings(INNGEST_OPERATOR_LOGIN=False)
@pytest.mark.parametrize("raw", [b"[" * 100_000, b'[{"name": "a/\\u0000"}]', b'{"app": "a", "x": 1e400}'],
                         ids=["nested past the stack", "NUL", "number past a double"])
@pytest.mark.parametrize("path", ["/api/v1/events", "/api/v1/functions"])
def test_bodies_that_cannot_be_stored_are_refused_with_400(path: str, raw: bytes) -> None:
    answer = Client().post(path, raw, content_type="application/json")
    assert answer.status_code == 400 and answer.json()["detail"].startswith("JSON parse error")


@override_settings(INNGEST_OPERATOR_LOGIN=False)
def test_run_filters_and_ids_no_run_can_have_find_nothing() -> None:
    client = Client()
    register(client)
    client.post("/api/v1/events", [{"name": "billing/charge"}], content_type="application/json")
    assert len(client.get("/api/v1/runs", {"since": "0001-01-01"}).json()["data"]) == 1  # before 1970: from the start
    assert client.get("/api/v1/runs", {"until": "0001-01-01"}).json()["data"] == []
    assert client.get("/api/v1/runs", {"function": "billing-charge\x00"}).status_code == 400  # RefuseNulMiddleware
    assert client.get("/api/v1/runs/%00").status_code == 400


def test_the_openapi_schema_documents_the_envelopes_and_errors_the_api_answers_with() -> None:
    schema = Client().get("/api/schema/", HTTP_ACCEPT="application/json").json()
    statuses = {(path, method): set(operation["responses"]) for path, operations in schema["paths"].items()
                for method, operation in operations.items()}
    assert statuses == {
        ("/api/v1/functions", "get"): {"200", "401"}, ("/api/v1/functions", "post"): {"201", "400", "401"},
        ("/api/v1/events", "post"): {"200", "400", "401"},
        ("/api/v1/runs", "get"): {"200", "400", "401"}, ("/api/v1/runs/{run_id}", "get"): {"200", "400", "401", "404"},
    }
    components = schema["components"]["schemas"]
    assert all("data" in components[name]["required"] for name in ("FunctionList", "RunPage", "RunDetailAnswer"))
