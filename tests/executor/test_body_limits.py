"""Body caps per endpoint, from Content-Length, before anything reads the body: 413 in each
endpoint's own error shape (inngest_project/middleware.py)."""
from __future__ import annotations

import json

import pytest
from django.test import Client, override_settings

from events.models import Event
from tests.factories import make_function

pytestmark = pytest.mark.django_db

SMALL = {"INNGEST_MAX_REQUEST_BYTES": 2048, "INNGEST_MAX_SDK_REQUEST_BYTES": 2048, "INNGEST_MAX_API_REQUEST_BYTES": 2048,
         "INNGEST_MAX_EVENT_BYTES": 2048, "INNGEST_MAX_FORM_BYTES": 2048}
MESSAGE = "Request body is larger than 2048 bytes"


@pytest.mark.parametrize(("path", "shape"), [
    ("/e/any-key", {"ids": [], "status": 413, "error": MESSAGE}),
    ("/fn/register", {"status": 413, "error": MESSAGE}),
    ("/invoke/{slug}", {"status": 413, "error": MESSAGE}),
    ("/v1/cancellations", {"status": 413, "error": MESSAGE}),
    ("/v0/gql", {"data": None, "errors": [{"message": MESSAGE}]}),
    ("/api/v1/events", {"status": 413, "error": MESSAGE}),
], ids=["events", "register", "invoke", "v1", "graphql", "operator api"])
def test_a_body_over_its_endpoints_cap_is_refused_with_413_in_the_endpoints_shape(client: Client, path: str,
                                                                                  shape: dict) -> None:
    path = path.format(slug=make_function().slug)
    body = json.dumps({"name": "a/b", "data": {"blob": "x" * 3000}})
    with override_settings(**SMALL):
        answer = client.post(path, data=body, content_type="application/json")
        under = client.post(path, data=json.dumps({"name": "a/b"}), content_type="application/json")
    assert (answer.status_code, answer.json()) == (413, shape)
    assert under.status_code != 413


def test_the_cap_is_checked_before_the_body_is_read(client: Client) -> None:
    # A Content-Length of 300 MiB with a few bytes behind it: the answer comes from the header alone
    # (reading would find the body short, and Django would refuse a body over its own cap with a 400).
    answer = client.post("/e/any-key", data=b'{"name": "a/b"}', content_type="application/json",
                         CONTENT_LENGTH=str(300 * 1024 * 1024))
    assert answer.status_code == 413 and answer.json()["error"] == f"Request body is larger than {256 * 1024 * 1024} bytes"
    assert Event.objects.count() == 0


def test_the_ui_and_admin_forms_have_a_cap_too(client: Client) -> None:
    with override_settings(**SMALL):
        answer = client.post("/admin/login/", data={"username": "x" * 3000, "password": "y"})
    assert (answer.status_code, answer.content.decode()) == (413, MESSAGE)


def test_invoke_looks_the_function_up_before_it_reads_the_body(client: Client) -> None:
    answer = client.post("/invoke/no-such-function", data=b"not json at all", content_type="application/json")
    assert answer.status_code == 404 and answer.json()["error"] == "function not found: no-such-function"


@override_settings(INNGEST_SIGNING_KEY="ab" * 32)
def test_invoke_needs_the_signing_key_when_one_is_set(client: Client) -> None:
    slug = make_function().slug
    refused = client.post(f"/invoke/{slug}", data={"data": {}}, content_type="application/json")
    assert (refused.status_code, refused.content) == (401, b"Authentication failed")
    accepted = client.post(f"/invoke/{slug}", data={"data": {"n": 1}}, content_type="application/json",
                           headers={"Authorization": "Bearer " + "ab" * 32})
    assert accepted.status_code == 200 and Event.objects.get(internal_id=accepted.json()["id"]).data["n"] == 1


@override_settings(INNGEST_MAX_API_REQUEST_BYTES=2048)
def test_sdk_calls_that_carry_a_runs_data_take_the_larger_sdk_cap(client: Client) -> None:
    # A signal's data, like a checkpoint's step outputs, is the user's data (a run's state is up to 32 MB).
    body = json.dumps({"signal": "s", "data": {"blob": "x" * 3000}})
    assert client.post("/v1/signals", data=body, content_type="application/json").status_code != 413
    assert client.post("/v1/cancellations", data=body, content_type="application/json").status_code == 413
