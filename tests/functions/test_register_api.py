"""`POST /fn/register`: keys in any case, validation, archiving, no-op re-syncs (§1.7)."""
from __future__ import annotations

import copy
import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from functions.models import App, Function

pytestmark = pytest.mark.django_db

URL = "http://127.0.0.1:5055/api/inngest"


def function_config(fn: str, event: str = "app/evt", **extra: object) -> dict:
    return {
        "id": f"my-app-{fn}", "name": fn,
        "triggers": [{"event": event}],
        "steps": {"step": {"id": "step", "name": "step", "retries": {"attempts": 2},
                           "runtime": {"type": "http", "url": f"{URL}?fnId=my-app-{fn}&stepId=step"}}},
        **extra,
    }


def python_sdk_body(*functions: dict) -> dict:
    """As the Python SDK sends it: `appname` and `deploy_type`, not `appName`/`deployType`."""
    return {"appname": "my-app", "deploy_type": "ping", "framework": "flask", "sdk": "py:v0.5.19",
            "url": URL, "v": "0.1", "functions": list(functions)}


def register(client: Client, body: object, **headers: str):
    return client.post("/fn/register", data=json.dumps(body), content_type="application/json", headers=headers)


def test_sync_stores_app_and_functions_with_case_insensitive_keys(client: Client) -> None:
    body = python_sdk_body(function_config("a"), function_config("b", concurrency=[{"limit": 2}]))
    body["functions"][1]["RATELIMIT"] = {"limit": 1, "period": "1m"}
    answer = register(client, body)
    assert answer.status_code == 200, answer.content
    assert answer.json()["ok"] is True and answer.json()["modified"] is True
    app = App.objects.get(name="my-app")
    assert (app.sdk_language, app.sdk_version, app.framework) == ("py", "0.5.19", "flask")
    first, second = Function.objects.order_by("slug")
    assert (first.slug, first.retries, first.max_attempts) == ("my-app-a", 2, 3)
    assert second.config["concurrency"] == [{"limit": 2}]
    assert second.config["rateLimit"] == {"limit": 1, "period": "1m"}  # kept whole for flow control
    assert list(first.triggers.values_list("event_name", flat=True)) == ["app/evt"]


def test_unchanged_resync_is_a_no_op_that_still_moves_last_sync(client: Client) -> None:
    body = python_sdk_body(function_config("a"))
    register(client, body)
    version = Function.objects.get().version
    App.objects.update(synced_at=timezone.now() - timedelta(hours=1))
    answer = register(client, copy.deepcopy(body))
    assert answer.json()["modified"] is False
    assert Function.objects.get().version == version
    assert timezone.now() - App.objects.get().synced_at < timedelta(minutes=1)  # "Last sync" moved


def test_functions_gone_from_the_app_are_archived_and_come_back(client: Client) -> None:
    register(client, python_sdk_body(function_config("a"), function_config("b")))
    register(client, python_sdk_body(function_config("a")))
    assert dict(Function.objects.values_list("slug", "is_archived")) == {"my-app-a": False, "my-app-b": True}
    register(client, python_sdk_body(function_config("a"), function_config("b")))
    assert not Function.objects.filter(is_archived=True).exists()


def test_missing_retries_default_to_four() -> None:
    config = function_config("a")
    del config["steps"]["step"]["retries"]
    register(Client(), python_sdk_body(config))
    assert Function.objects.get().retries == 4


@pytest.mark.parametrize("mutate, detail", [
    (lambda f: f.pop("name"), "has no name"),
    (lambda f: f["steps"]["step"]["runtime"].pop("url"), "No SDK URL provided for function 'a'"),
    (lambda f: f.update(steps={}), "must have exactly one step"),
    (lambda f: f.update(triggers=[{"event": "x", "cron": "* * * * *"}]), "exactly one of event or cron"),
    (lambda f: f.update(triggers=[{"event": "x", "expression": "event.data.a =="}]), 'invalid trigger "x" expression'),
    (lambda f: f.update(concurrency=[{"limit": 1, "scope": "env"}]), "concurrency with scope 'env' needs a key"),
], ids=["no name", "no url", "no step", "event and cron", "bad expression", "bad flow control"])
def test_invalid_function_is_refused_and_the_error_kept_on_the_app(client: Client, mutate, detail) -> None:
    register(client, python_sdk_body(function_config("ok")))
    config = function_config("a")
    mutate(config)
    answer = register(client, python_sdk_body(config))
    assert answer.status_code == 400
    payload = answer.json()
    assert payload["error"] == "At least one function is invalid" and payload["status"] == 400
    assert any(detail in error for error in payload["data"]["errors"])
    assert detail in App.objects.get(name="my-app").error


@pytest.mark.parametrize("body, error", [
    ({"url": URL, "functions": []}, "Invalid request: appName is required"),
    ([1, 2], "Invalid request: the body must be a JSON object"),
])
def test_malformed_register_requests_are_refused(client: Client, body, error) -> None:
    answer = register(client, body)
    assert answer.status_code == 400 and answer.json() == {"error": error}


def test_register_body_that_is_not_json_is_refused(client: Client) -> None:
    answer = client.post("/fn/register", data=b"{{", content_type="application/json")
    assert answer.status_code == 400 and answer.json()["error"].startswith("Invalid request:")


def test_server_kind_mismatch_is_refused(client: Client) -> None:
    answer = register(client, python_sdk_body(function_config("a")), **{"X-Inngest-Expected-Server-Kind": "cloud"})
    assert answer.status_code == 400
    assert answer.json() == {"error": "Expected server kind dev, got cloud"}


def test_health_and_dev_info(client: Client) -> None:
    assert client.get("/health").json() == {"status": 200, "message": "OK"}
    register(client, python_sdk_body(function_config("a")))
    info = client.get("/dev").json()
    assert [f["slug"] for f in info["functions"]] == ["my-app-a"]


@pytest.mark.parametrize("mutate, detail", [
    (lambda f: f.update(id="x" * 256), "longer than 255 characters"),
    (lambda f: f.update(name="x" * 256), "longer than 255 characters"),
    (lambda f: f.update(cancel=True), "cancel must be a list"),
    (lambda f: f.update(cancel=[{"event": "x" * 256}]), "cancel event names are at most 255 characters"),
    (lambda f: f.update(cancel=[{"event": "a/b", "if": {"x": 1}}]), "cancel if must be an expression string"),
    (lambda f: f.update(cancel=[{"event": "a/b", "timeout": "999999999d"}]), "longer than 106751 days"),
    (lambda f: f.update(timeouts=["1h"]), "timeouts must be an object"),
    (lambda f: f.update(timeouts={"start": "999999999d"}), "longer than 106751 days"),
    (lambda f: f.update(debounce={"period": "1s", "timeout": "999999999d"}), "longer than 106751 days"),
    (lambda f: f.update(throttle={"limit": 1, "period": "1" * 400 + "s"}), "longer than 106751 days"),
], ids=["long id", "long name", "cancel not a list", "long cancel event", "cancel if not a string", "cancel timeout too long",
        "timeouts not an object", "start timeout too long", "debounce timeout too long", "throttle period overflows"])
def test_config_that_would_fail_later_is_refused_at_sync(client: Client, mutate, detail: str) -> None:
    config = function_config("a")
    mutate(config)
    answer = register(client, python_sdk_body(config))
    assert answer.status_code == 400
    payload = answer.json()
    assert payload["error"] == "At least one function is invalid"
    assert any(detail in error for error in payload["data"]["errors"]), payload


def test_batch_size_over_the_cap_is_refused_naming_the_function_and_field(client: Client, settings) -> None:
    answer = register(client, python_sdk_body(function_config("a", batchEvents={"maxSize": 1001, "timeout": "5s"})))
    assert answer.status_code == 400
    assert answer.json()["data"]["errors"] == [
        "Function 'a' has an invalid configuration: batchEvents.maxSize must be at most 1000, not 1001"]
    assert not Function.objects.exists()

    answer = register(client, python_sdk_body(function_config("a", batchEvents={"maxSize": 1000, "timeout": "5s"})))
    assert answer.status_code == 200, answer.content

    settings.INNGEST_MAX_BATCH_SIZE = 50
    answer = register(client, python_sdk_body(function_config("a", batchEvents={"maxSize": 51, "timeout": "5s"})))
    assert answer.status_code == 400 and "batchEvents.maxSize must be at most 50" in answer.json()["data"]["errors"][0]


@pytest.mark.parametrize("raw, error", [
    (b'{"appname": "a\\u0000"}', "cannot contain the NUL character"),
    (b'{"appname": "a", "functions": [{"name": "\\udc00"}]}', "cannot contain unpaired surrogates"),
    (b'{"appname": "a", "functions": [{"retries": NaN}]}', "NaN is not a JSON value"),
    (b"[" * 100_000, "nested more than 200 levels deep"),
    (json.dumps({"appname": "x" * 256}).encode(), "appName is longer than 255 characters"),
], ids=["NUL", "lone surrogate", "NaN", "nested past the stack", "long app name"])
def test_register_body_that_cannot_be_stored_is_refused(client: Client, raw: bytes, error: str) -> None:
    answer = client.post("/fn/register", data=raw, content_type="application/json")
    assert answer.status_code == 400 and error in answer.json()["error"]
    assert not App.objects.exists()


def test_overlong_sdk_details_are_cut_to_their_columns(client: Client) -> None:
    body = python_sdk_body(function_config("a")) | {"sdk": "py:v" + "1" * 100, "framework": "f" * 100, "appVersion": "v" * 300}
    assert register(client, body).status_code == 200
    app = App.objects.get()
    assert (len(app.sdk_version), len(app.framework), len(app.app_version)) == (64, 64, 255)


def test_the_errors_of_a_bad_register_are_short_lines_and_a_few_of_them(client: Client) -> None:
    # 50 invalid functions, each with a newline and 300 characters in its id: the answer and the
    # error kept on the app (shown in the UI) list 20 errors of one line each, and count the rest.
    register(client, python_sdk_body(function_config("ok")))
    bad = [function_config(f"f{i}\n" + "z" * 300) for i in range(50)]
    answer = register(client, python_sdk_body(function_config("ok"), *bad))
    errors = answer.json()["data"]["errors"]
    assert answer.status_code == 400 and len(errors) == 21 and errors[-1] == "and 30 more"
    assert all(len(error) <= 300 and "\n" not in error for error in errors)
    assert errors[0].startswith("Function 'my-app-f0 zzz") and "…" in errors[0]
    assert errors[0].endswith("' has an id or a name longer than 255 characters")
    assert App.objects.get(name="my-app").error == "; ".join(errors)


def test_sync_marks_the_functions_whose_runs_start_when_their_first_call_is_claimed(client: Client) -> None:
    body = python_sdk_body(
        function_config("plain", rateLimit={"limit": 1, "period": "1m"}),
        function_config("limited", concurrency=[{"limit": 2}]),
        function_config("timed", timeouts={"start": "10s"}),
        function_config("zero", concurrency=0),
    )
    assert register(client, body).status_code == 200
    starts = dict(Function.objects.values_list("slug", "starts_when_claimed"))
    assert starts == {"my-app-plain": True, "my-app-limited": False, "my-app-timed": False, "my-app-zero": True}
    # A resync that adds a limit takes it back.
    body["functions"][0]["concurrency"] = {"limit": 1}
    assert register(client, body).status_code == 200
    assert Function.objects.get(slug="my-app-plain").starts_when_claimed is False
