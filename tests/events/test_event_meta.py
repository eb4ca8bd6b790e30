"""An event's `meta` (sessions): resolved at ingest, kept, and handed to the runs it starts."""
from __future__ import annotations

import json

import pytest
from django.test import Client

from events.meta import EventMetaError, resolve_meta
from events.models import Event
from runs.models import Run
from tests.factories import make_function


@pytest.mark.parametrize("raw, expected", [
    (None, None),
    ({}, None),
    ({"sessions": {"org": "acme"}}, {"sessions": {"org": "acme"}}),
    ({"sessions": {"org": 42, "ratio": 1.5}}, {"sessions": {"org": "42", "ratio": "1.5"}}),
    # The user's layer wins over the one the SDK stamped from the sending run.
    ({"sessions": {"org": "override"}, "propagated_sessions": {"org": "acme", "team": "core"}},
     {"sessions": {"org": "override", "team": "core"}}),
    ({"propagated_sessions": {"org": "acme"}}, {"sessions": {"org": "acme"}}),
    # null cuts an inherited key; sessions: null cuts them all.
    ({"sessions": {"team": None}, "propagated_sessions": {"org": "acme", "team": "core"}}, {"sessions": {"org": "acme"}}),
    ({"sessions": None, "propagated_sessions": {"org": "acme"}}, None),
    # Inherited keys fill what room the user's leave, in key order.
    ({"sessions": {"a": "1", "b": "2", "c": "3"}, "propagated_sessions": {"z": "9", "y": "8", "x": "7"}},
     {"sessions": {"a": "1", "b": "2", "c": "3", "x": "7", "y": "8"}}),
], ids=["none", "empty", "sessions", "numbers", "manual wins", "propagated only", "tombstone", "clear all", "room"])
def test_sessions_are_resolved_into_one_map(raw, expected) -> None:
    assert resolve_meta(raw) == expected


@pytest.mark.parametrize("raw, message", [
    ("text", "Event meta must be an object"),
    ({"sessions": ["a"]}, "Event meta.sessions must be an object"),
    ({"sessions": {"org": True}}, "must be a string or a number"),
    ({"propagated_sessions": {"org": None}}, "must be a string or a number"),
    ({"sessions": {str(n): "x" for n in range(6)}}, "at most 5 entries"),
    ({"sessions": {"k" * 129: "x"}}, "exceeds 128 bytes"),
    ({"sessions": {"org": "x" * 513}}, "exceeds 512 bytes"),
    ({"sessions": {"org": ""}}, "cannot have an empty ID"),
    ({"sessions": {"": "x"}}, "keys cannot be empty"),
])
def test_bad_meta_is_refused_saying_why(raw, message) -> None:
    with pytest.raises(EventMetaError, match=message):
        resolve_meta(raw)


@pytest.mark.django_db
def test_an_events_meta_is_stored_and_given_to_its_run(client: Client) -> None:
    make_function(event="test/meta")
    body = {"name": "test/meta", "data": {}, "meta": {"sessions": {"org": "acme"}, "propagated_sessions": {"t": "1"}}}
    answer = client.post("/e/key", data=json.dumps(body), content_type="application/json")
    assert answer.status_code == 200, answer.content
    event = Event.objects.get(internal_id=answer.json()["ids"][0])
    assert event.meta == {"sessions": {"org": "acme", "t": "1"}}
    (run,) = Run.objects.filter(event=event)
    assert run.events[0]["meta"] == {"sessions": {"org": "acme", "t": "1"}}


@pytest.mark.django_db
def test_an_event_without_meta_has_none(client: Client) -> None:
    answer = client.post("/e/key", data=json.dumps({"name": "test/plain"}), content_type="application/json")
    event = Event.objects.get(internal_id=answer.json()["ids"][0])
    assert event.meta is None and "meta" not in event.as_payload()


@pytest.mark.django_db
def test_an_event_with_bad_meta_is_refused_with_a_400(client: Client) -> None:
    answer = client.post("/e/key", data=json.dumps({"name": "test/bad", "meta": {"sessions": {"org": False}}}),
                         content_type="application/json")
    assert answer.status_code == 400
    assert "must be a string or a number" in answer.json()["error"] and not Event.objects.exists()


@pytest.mark.django_db
def test_an_invoke_keeps_its_meta_and_refuses_a_bad_one(client: Client) -> None:
    function = make_function()
    answer = client.post(f"/invoke/{function.slug}", content_type="application/json",
                         data=json.dumps({"data": {}, "meta": {"propagated_sessions": {"org": "acme"}}}))
    assert answer.status_code == 200, answer.content
    assert Event.objects.get(internal_id=answer.json()["id"]).meta == {"sessions": {"org": "acme"}}
    bad = client.post(f"/invoke/{function.slug}", content_type="application/json",
                      data=json.dumps({"data": {}, "meta": {"sessions": "acme"}}))
    assert bad.status_code == 400 and "must be an object" in bad.json()["error"]
