"""`POST /e/{key}`: what is accepted, what is refused, and the documented shapes (§1.4)."""
from __future__ import annotations

import base64
import json

import pytest
from django.test import Client, override_settings

from events.models import Event
from runs.models import Run
from tests.factories import make_function

pytestmark = pytest.mark.django_db


def post(client: Client, body: object, raw: bytes | None = None, **headers: str):
    data = raw if raw is not None else json.dumps(body)
    return client.post("/e/some-key", data=data, content_type="application/json", headers=headers)


def test_single_event_is_stored_and_its_internal_id_returned(client: Client) -> None:
    answer = post(client, {"name": "app/user.created", "data": {"a": 1}})
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == 200 and len(body["ids"]) == 1 and len(body["ids"][0]) == 26
    event = Event.objects.get(internal_id=body["ids"][0])
    assert event.name == "app/user.created" and event.data == {"a": 1}
    assert event.ts > 1_700_000_000_000  # defaulted to the receive time, in ms
    assert event.event_id == event.internal_id  # no user id: the internal id stands in
    assert answer["X-Inngest-Server-Kind"] == "dev"


def test_array_of_events_keeps_order_user_ids_and_strips_reserved_data(client: Client) -> None:
    answer = post(client, [
        {"name": "a/one", "data": {"_inngest": {"x": 1}, "k": 1}, "id": "user-1", "ts": 1_700_000_000_000},
        {"name": "a/two", "data": None, "user": {"email": "x@y"}, "v": "2024-01-01"},
    ])
    assert answer.status_code == 200
    first, second = (Event.objects.get(internal_id=i) for i in answer.json()["ids"])
    assert (first.name, first.event_id, first.data, first.ts) == ("a/one", "user-1", {"k": 1}, 1_700_000_000_000)
    assert (second.data, second.user, second.v) == ({}, {"email": "x@y"}, "2024-01-01")


@pytest.mark.parametrize("body, raw, message", [
    (None, b"{not json", "Unable to parse event body as JSON"),
    ({"name": "", "data": {}}, None, "Event name is empty"),
    ({"data": {}}, None, "Event name is empty"),
    ({"name": "inngest/function.failed", "data": {}}, None, "Event name is reserved for internal use"),
    ({"name": "Inngest/anything"}, None, "Event name is reserved for internal use"),
    ({"name": "a/b", "data": [1, 2]}, None, "Event data must be an object"),
    ({"name": "a/b", "ts": 5}, None, "Event ts must be between 1980-01-01 and 2100-01-01"),
    ({"name": "a/b", "id": 12}, None, "Event id must be a string"),
    ("just a string", None, "Each event must be a JSON object"),
], ids=["malformed json", "empty name", "missing name", "reserved name", "reserved name any case",
        "data not an object", "ts out of range", "id not a string", "not an object"])
def test_bad_event_is_refused_with_the_documented_400(client: Client, body, raw, message) -> None:
    answer = post(client, body, raw=raw)
    assert answer.status_code == 400
    payload = answer.json()
    assert payload["status"] == 400 and payload["ids"] == []
    assert payload["error"].startswith(message)
    assert Event.objects.count() == 0


def test_events_before_a_bad_one_are_kept_and_reported(client: Client) -> None:
    answer = post(client, [{"name": "ok/one"}, {"name": ""}, {"name": ""}])
    assert answer.status_code == 400
    payload = answer.json()
    assert len(payload["ids"]) == 1 and payload["error"] == "Event name is empty"
    assert list(Event.objects.values_list("internal_id", flat=True)) == payload["ids"]


def test_more_than_5000_events_are_refused(client: Client) -> None:
    answer = post(client, [{"name": "a/b"}] * 5001)
    assert answer.status_code == 400
    assert answer.json()["error"] == "Too many events in one request: 5001 > 5000"
    assert Event.objects.count() == 0


def test_event_over_3_mib_is_refused() -> None:
    client = Client()
    answer = post(client, [{"name": "a/small"}, {"name": "a/big", "data": {"blob": "x" * (3 * 1024 * 1024)}}])
    assert answer.status_code == 400
    assert answer.json()["error"] == "Event is larger than the limit of 3145728 bytes"
    assert len(answer.json()["ids"]) == 1


@override_settings(INNGEST_MAX_EVENT_BYTES=100)
def test_event_size_limit_is_configurable(client: Client) -> None:
    answer = post(client, {"name": "a/b", "data": {"blob": "x" * 200}})
    assert answer.status_code == 400 and "larger than the limit of 100 bytes" in answer.json()["error"]


def test_seed_header_makes_internal_ids_deterministic_and_every_delivery_is_stored(client: Client) -> None:
    seed = "1700000000000," + base64.b64encode(bytes(range(10))).decode()
    events = [{"name": "a/one"}, {"name": "a/two"}]
    first = post(client, events, **{"x-inngest-event-id-seed": seed}).json()["ids"]
    again = post(client, events, **{"x-inngest-event-id-seed": seed}).json()["ids"]
    assert first == again and first[0] != first[1]
    assert first[0].startswith("01HF")  # the ULID time part is the seed's 1700000000000 ms
    assert Event.objects.count() == 4


def test_matching_event_starts_one_queued_run_with_its_payload(client: Client) -> None:
    function = make_function(event="shop/order.*")
    answer = post(client, {"name": "shop/order.paid", "data": {"n": 1}, "id": "order-1"})
    run = Run.objects.get(function=function)
    assert run.status == "queued"
    assert run.event.internal_id == answer.json()["ids"][0]
    assert run.events[0]["data"] == {"n": 1} and run.events[0]["id"] == "order-1"
    assert run.pending_calls.get().step_target == "step"


@override_settings(INNGEST_MAX_REQUEST_BYTES=1024)
def test_request_body_over_the_server_limit_is_refused_with_413_in_the_event_shape(client: Client) -> None:
    answer = post(client, [{"name": "a/b", "data": {"blob": "x" * 2000}}])
    assert answer.status_code == 413
    assert answer.json() == {"ids": [], "status": 413, "error": "Request body is larger than 1024 bytes"}
    assert Event.objects.count() == 0


@pytest.mark.parametrize("raw, message", [
    (b'{"name": "a/\\u0000"}', "cannot contain the NUL character"),
    (b'{"name": "a/b", "data": {"k\\u0000": 1}}', "cannot contain the NUL character"),
    (b'{"name": "a/b", "id": "\\ud83d"}', "cannot contain unpaired surrogates"),
    (b'{"name": "a/b", "user": {"s": "\\udfff"}}', "cannot contain unpaired surrogates"),
    (b'{"name": "a/\xed\xa0\x80"}', "can't decode byte 0xed"),
    (b'{"name": "a/b", "data": {"x": NaN}}', "NaN is not a JSON value"),
    (b'{"name": "a/b", "data": {"x": -Infinity}}', "-Infinity is not a JSON value"),
    (b'{"name": "a/b", "data": {"x": 1e400}}', "number out of range"),
    (b"[" * 100_000 + b"]" * 100_000, "nested more than 200 levels deep"),
    (b'{"name": "a/b", "data": ' + b'{"a":' * 200 + b"1" + b"}" * 200 + b"}", "nested more than 200 levels deep"),
], ids=["NUL in name", "NUL in a data key", "lone surrogate in id", "lone surrogate in user", "UTF-8 encoded surrogate",
        "NaN", "-Infinity", "number past a double", "nested past the stack", "nested past 200 levels"])
def test_json_that_postgresql_cannot_store_is_refused_with_the_documented_400(client: Client, raw: bytes, message: str) -> None:
    answer = post(client, None, raw=raw)
    assert answer.status_code == 400
    payload = answer.json()
    assert payload["ids"] == [] and payload["status"] == 400 and message in payload["error"]
    assert Event.objects.count() == 0


def test_integer_past_a_doubles_range_still_goes_through_an_expression_trigger(client: Client) -> None:
    function = make_function(event="a/b", expression="event.data.n > 1")
    answer = post(client, {"name": "a/b", "data": {"n": 10**400}})
    assert answer.status_code == 200
    assert Event.objects.get().data == {"n": 10**400}
    assert Run.objects.filter(function=function).count() == 1


@pytest.mark.parametrize("url", ["/v1/runs/%00", "/v1/events/%00", "/v1/events?name=%00", "/v1/events?cursor=a%00",
                                 "/api/v1/runs?status=%00"])
def test_a_url_with_a_nul_character_is_refused_with_400(client: Client, url: str) -> None:
    answer = client.get(url)
    assert answer.status_code == 400
    assert answer.json() == {"status": 400, "error": "the URL contains a NUL character"}


def test_invoke_refuses_json_it_cannot_store_with_400(client: Client) -> None:
    make_function(event="a/b", slug="invokable")
    for raw in (b'{"data": ' + b"[" * 5000 + b"]" * 5000 + b"}", b'{"data": {"s": "\\u0000"}}'):
        answer = client.post("/invoke/invokable", data=raw, content_type="application/json")
        assert answer.status_code == 400, answer.content
        assert answer.json()["status"] == 400
