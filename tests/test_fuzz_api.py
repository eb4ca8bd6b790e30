"""Fuzzing the HTTP API: no input may get a 5xx answer or raise out of a view.

- `POST /e/{key}` and `POST /fn/register` through hypothesis: arbitrary bytes, arbitrary JSON, and
  event- or config-shaped objects with fuzzed field types. The answers are the protocol's
  (protocol.md §1.3, §1.4, §1.7): an acknowledged event is stored, a refusal has the documented shape.
- The operator API (/api/v1) through schemathesis, from its own OpenAPI schema, with a valid token:
  no server errors, and status codes, media types and bodies as the schema documents them; plus
  arbitrary bytes and query strings where the schema's types say little.

Requests run in-process against the Django app, inside the test's transaction like the other API
tests (so runs' Celery messages, sent on commit, are never sent); each example is rolled back, so
examples do not see each other's rows. FUZZ_EXAMPLES sets the examples per test (default 250, the same
ones every run; with FUZZ_EXAMPLES set they are drawn at random).
"""
from __future__ import annotations

import json
import os
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Iterator
from urllib.parse import quote

import pytest
import schemathesis
from django.contrib.auth.models import User
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from django.test import Client, override_settings
from hypothesis import HealthCheck, event, given, note, settings, strategies as st
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance, status_code_conformance

from events.keys import create_key
from events.models import Event
from functions.models import App, Function
from runs.models import Run, Step, StepAttempt

pytestmark = [pytest.mark.fuzz, pytest.mark.django_db]

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "250"))
FUZZ = settings(
    # The default run (CI) draws the same examples every time; a longer run draws new ones.
    max_examples=EXAMPLES, deadline=None, database=None, derandomize="FUZZ_EXAMPLES" not in os.environ,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much, HealthCheck.large_base_example],
)
SIGNING_KEY = "a1" * 32
APP_URL = "http://127.0.0.1:9/api/inngest"  # port 9 (discard) is closed here: nothing is ever reached
PRODUCTION = override_settings(INNGEST_SIGNING_KEY=SIGNING_KEY, INNGEST_SERVER_KIND="cloud",
                               INNGEST_REQUIRE_EVENT_KEYS=True, INNGEST_OPERATOR_LOGIN=True)


def show(**inputs: Any) -> None:
    """Print the inputs of a failing example: schemathesis turns off Hypothesis's own printing
    for every test in the process (schemathesis.generation.hypothesis.setup)."""
    for name, value in inputs.items():
        text = repr(value)
        note(f"{name} = {text[:3000]}{' ...' if len(text) > 3000 else ''}")


@contextmanager
def rolled_back() -> Iterator[None]:
    """One example's rows, gone after it (a savepoint inside the test's transaction)."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


# --- strategies --------------------------------------------------------------------------------

# Every code point, lone surrogates and NUL included: json.dumps escapes what UTF-8 cannot carry.
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=40)
LONG_TEXT = st.text(st.characters(codec="utf-8"), min_size=250, max_size=300)
TEXT = ANY_TEXT | LONG_TEXT | st.sampled_from(["", " ", "\x00", "\ud800", "app/ok", "inngest/x", "INNGEST/y", "a" * 256])
HUGE_INTS = st.integers(min_value=2**63 - 2, max_value=10**400) | st.integers(min_value=-(10**400), max_value=-(2**63))
SCALARS = st.none() | st.booleans() | st.integers() | HUGE_INTS | st.floats(allow_nan=False, allow_infinity=False) | TEXT
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
                    max_leaves=12)


def deep(depth: int, kind: str) -> str:
    """JSON text nested `depth` levels deep (built as text: json.dumps itself would recurse too deep)."""
    return ("[" * depth + "1" + "]" * depth) if kind == "list" else ('{"a":' * depth + "1" + "}" * depth)


DEEP = st.builds(deep, st.integers(min_value=50, max_value=5000), st.sampled_from(["list", "dict"]))
# Texts that are (or are almost) JSON and that Python's json module reads differently from others.
NASTY_TEXT = st.sampled_from([
    "NaN", "Infinity", "-Infinity", "1e400", "-1e400", '{"name": "a/b", "data": {"x": NaN}}',
    '{"name": "a/b", "ts": 1e400}', '{"name": "a/b", "data": {"x": 1e999}}', "1" * 5000,
    '{"name": "a/b", "data": {"n": ' + "9" * 4400 + "}}", '{"name": "a/\\u0000"}', '{"name": "a/b", "data": {"\\u0000": 1}}',
    '{"name": "a/\\ud800"}', '{"name": "a/b", "data": {"s": "\\udfff"}}', '{"name": "a/b", "id": "\\ud83d"}',
    "\ufeff{}", '{"name": "a/b"} trailing', "", " ", "null", "[]", "[[]]", "{}", '{"name": "a/b", "name": 1}',
])
RAW_BODIES = st.binary(max_size=200) | NASTY_TEXT.map(str.encode) | DEEP.map(str.encode) | st.builds(
    lambda depth, kind: ('{"name": "app/ok", "data": {"x": ' + deep(depth, kind) + "}}").encode(),
    st.integers(min_value=50, max_value=2000), st.sampled_from(["list", "dict"]))


# Event names that the registered functions below trigger on, so runs, debounces and batches start.
TRIGGERED_NAMES = st.sampled_from(["app/ok", "shop/order.paid", "shop/debounced", "shop/batched", "shop/once"])
TS = st.integers() | HUGE_INTS | st.floats(allow_nan=False) | st.integers(min_value=315532800000, max_value=4102444800000) | JSON
EVENT_DATA = st.fixed_dictionaries({}, optional={"id": JSON, "user": JSON, "n": JSON, "_inngest": JSON}) | JSON
EVENT = st.fixed_dictionaries({}, optional={
    "name": TEXT | TRIGGERED_NAMES | JSON, "data": EVENT_DATA, "user": JSON | st.dictionaries(TEXT, JSON, max_size=3),
    "id": TEXT | JSON, "ts": TS, "v": TEXT | JSON, "meta": JSON,
})
WELL_FORMED_EVENT = st.fixed_dictionaries({"name": TRIGGERED_NAMES}, optional={
    "data": st.dictionaries(TEXT, JSON, max_size=3), "id": st.text(max_size=20),
    "ts": st.integers(min_value=315532800000, max_value=4102444800000),
})
EVENT_BODIES = EVENT | st.lists(EVENT, max_size=6) | JSON | st.lists(WELL_FORMED_EVENT, min_size=1, max_size=6)


# --- /e/{key} ----------------------------------------------------------------------------------

@pytest.fixture
def triggered_functions(client: Client) -> None:
    """Functions on the fuzzed names, with the flow control whose keys read event data."""
    def config(fn: str, event_name: str, **extra: object) -> dict:
        runtime = {"type": "http", "url": f"{APP_URL}?fnId=fuzz-{fn}&stepId=step"}
        return {"id": f"fuzz-{fn}", "name": fn, "triggers": [{"event": event_name, **extra.pop("trigger", {})}],
                "steps": {"step": {"id": "step", "name": "step", "runtime": runtime}}, **extra}

    functions = [
        config("plain", "app/ok"),
        config("filtered", "app/ok", trigger={"expression": "event.data.n > 1 && event.data.user.plan == 'pro'"}),
        config("keyed", "shop/*", concurrency=[{"limit": 2, "key": "event.data.user"}],
               throttle={"limit": 1, "period": "1m", "key": "event.data.id"}, priority={"run": "event.data.n"}),
        config("debounced", "shop/debounced", debounce={"period": "5s", "key": "event.data.id", "timeout": "1m"}),
        config("batched", "shop/batched", batchEvents={"maxSize": 3, "timeout": "5s", "key": "event.data.user"}),
        config("once", "shop/once", idempotency="event.data.id", singleton={"mode": "skip", "key": "event.data.n"},
               rateLimit={"limit": 5, "period": "1h", "key": "event.data.user"}),
    ]
    body = {"appName": "fuzz", "url": APP_URL, "functions": functions}
    answer = client.post("/fn/register", body, content_type="application/json")
    assert answer.status_code == 200, answer.content


def check_ingest_answer(answer: Any, body: Any) -> None:
    assert answer.status_code < 500, answer.content
    payload = answer.json()
    events = body if isinstance(body, list) else [body]
    if answer.status_code == 200:
        assert set(payload) == {"ids", "status"} and payload["status"] == 200
        assert len(payload["ids"]) == len(events)
    else:
        assert answer.status_code == 400, answer.content
        assert set(payload) == {"ids", "status", "error"} and payload["status"] == 400
        assert isinstance(payload["error"], str) and payload["error"]
        assert isinstance(payload["ids"], list) and len(payload["ids"]) <= len(events)
    stored = dict(Event.objects.filter(internal_id__in=payload["ids"]).values_list("internal_id", "name"))
    assert set(stored) == set(payload["ids"])  # every acknowledged event is stored
    assert [stored[i] for i in payload["ids"]] == [e["name"] for e in events[:len(payload["ids"])]]


@FUZZ
@given(body=EVENT_BODIES)
def test_any_json_body_to_the_event_api_is_stored_or_refused_with_the_event_shape(client: Client, triggered_functions: None,
                                                                                  body: Any) -> None:
    show(body=body)
    with rolled_back():
        answer = client.post("/e/fuzz-key", json.dumps(body), content_type="application/json")
        check_ingest_answer(answer, body)


@FUZZ
@given(raw=RAW_BODIES, content_type=st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded", ""]))
def test_any_bytes_to_the_event_api_get_an_answer_below_500(client: Client, triggered_functions: None, raw: bytes,
                                                           content_type: str) -> None:
    show(raw=raw, content_type=content_type)
    with rolled_back():
        answer = client.post("/e/fuzz-key", raw, content_type=content_type)
        assert answer.status_code < 500, answer.content
        payload = answer.json()
        assert payload["status"] == answer.status_code and isinstance(payload["ids"], list)
        if answer.status_code == 400:
            assert payload["error"]
        assert Event.objects.filter(internal_id__in=payload["ids"]).count() == len(payload["ids"])


@FUZZ
@given(key=ANY_TEXT | st.just("good-key"), body=WELL_FORMED_EVENT)
def test_production_event_api_takes_only_known_keys(client: Client, key: str, body: dict) -> None:
    show(key=key, body=body)
    with PRODUCTION, rolled_back():
        create_key("fuzz", "good-key")
        path = "/e/" + quote(key.encode("utf-8", "surrogatepass"), safe="")  # any bytes may come in a URL
        answer = client.post(path, json.dumps(body), content_type="application/json")
        assert answer.status_code < 500, answer.content
        if key == "good-key":
            check_ingest_answer(answer, body)
        elif answer.status_code == 401:
            assert answer.json() == {"status": 401, "message": "Event key not found", "error": "Event key not found"}
        elif "\x00" in key:  # refused before any view: RefuseNulMiddleware
            assert (answer.status_code, answer.json()["status"]) == (400, 400)
        else:
            assert answer.status_code == 404  # an empty key or one with a slash is no /e/{key} route


# --- /fn/register ------------------------------------------------------------------------------

CRON = st.sampled_from([
    "* * * * *", "0 9 * * 1-5", "TZ=Europe/Paris 0 9 * * *", "@daily", "61 * * * *", "* * *", "CRON_TZ=Nowhere/Land * * * * *",
    "TZ=../../etc/passwd * * * * *", "*/0 * * * *", "0 0 31 2 *", "* * * " + ",".join(["1,2,3,4,5,6,7,8,9,10,11,12"] * 3) + " *",
])
EXPRESSION = TEXT | st.sampled_from(["event.data.n > 1", "event.data.user", "event.data.x == 'a' ? 1 : 2", "(((", "1e999",
                                     "99999999999999999999999", "size(event.data)", "'\\u0000'", "event." * 200 + "x"])
DURATION = TEXT | JSON | st.sampled_from(["1s", "5m", "1h30m", "7d", "1w", "0s", "-1s", "999999999d", "1" * 400 + "s",
                                          "1.5.5s", "300ms", "2562047h", "1e9w", "2999-01-01T00:00:00Z"])
NUMBER = st.integers() | HUGE_INTS | st.floats(allow_nan=False) | st.sampled_from([0, 1, -1, 2.5, 1e308, True]) | JSON
SCOPE = TEXT | st.sampled_from(["fn", "env", "ACCOUNT"])
LIMIT = st.fixed_dictionaries({}, optional={"limit": NUMBER, "key": EXPRESSION, "scope": SCOPE})
TRIGGER = st.fixed_dictionaries({}, optional={"event": TEXT | TRIGGERED_NAMES, "expression": EXPRESSION, "cron": CRON | TEXT,
                                             "jitter": DURATION}) | JSON
STEP_URL = st.sampled_from([APP_URL, "ws://x", "ftp://x", ""]) | TEXT
STEP = st.fixed_dictionaries({}, optional={
    "id": TEXT, "name": TEXT, "retries": st.fixed_dictionaries({}, optional={"attempts": NUMBER}) | JSON,
    "runtime": st.fixed_dictionaries({}, optional={"type": TEXT, "url": STEP_URL}) | JSON,
})


def fields(**strategies: st.SearchStrategy) -> st.SearchStrategy:
    """An object with any of these fields, or any JSON value at all."""
    return st.fixed_dictionaries({}, optional=strategies) | JSON


def accepted_or(valid: list, fuzz: st.SearchStrategy) -> st.SearchStrategy:
    """Values the server takes, two times in three (so validation goes on to the next field), else anything."""
    return st.sampled_from(valid) | st.sampled_from(valid) | fuzz


# Each function field: values the server takes, extremes included, or fuzz of the field's shape.
FUNCTION_FIELDS = {
    "triggers": accepted_or([[{"event": "app/ok"}], [{"event": "shop/*", "expression": "event.data.n > 1"}],
                             [{"cron": "0 9 * * *"}, {"event": "app/ok"}],
                             [{"event": "app/ok", "cron": ""}, {"event": "shop/once"}]],
                            st.lists(TRIGGER, max_size=12) | JSON),
    "retries": accepted_or([0, 20, 10**6, 2.0], NUMBER),
    "concurrency": accepted_or(
        [2, 0, 10**30, {"limit": 3, "key": "event.data.user"},
         [{"limit": 2, "scope": "env", "key": "event.data.id"}, {"limit": 1}],
         {"fn": [{"limit": 1}], "step": [{"limit": 2, "key": "event.data.user"}]}],
        NUMBER | LIMIT | st.lists(LIMIT, max_size=3) | fields(fn=st.lists(LIMIT, max_size=2), step=st.lists(LIMIT, max_size=3))),
    "rateLimit": accepted_or([{"limit": 1, "period": "24h"}, {"limit": 5, "period": "1s", "key": "event.data.user"},
                              {"limit": 10**20, "period": "1m"}],
                             fields(limit=NUMBER, period=DURATION, key=EXPRESSION)),
    "throttle": accepted_or([{"limit": 0, "period": "1s"}, {"limit": 3, "period": "10s", "burst": 2, "key": "event.data.id"},
                             {"limit": 1, "period": "999999999d"}, {"limit": 10**20, "period": "1s", "burst": 10**20}],
                            fields(limit=NUMBER, period=DURATION, burst=NUMBER, key=EXPRESSION)),
    "debounce": accepted_or([{"period": "1s"}, {"period": "7d", "key": "event.data.id", "timeout": "999999999d"},
                             {"period": "5s", "timeout": "1ms"}],
                            fields(period=DURATION, key=EXPRESSION, timeout=DURATION)),
    "batchEvents": accepted_or([{"maxSize": 2, "timeout": "1s"}, {"maxSize": 1, "timeout": "0s"},
                                {"maxSize": 10**9, "timeout": "2562047h", "key": "event.data.user", "if": "event.data.n > 1"}],
                               fields(maxSize=NUMBER, timeout=DURATION, key=EXPRESSION, **{"if": EXPRESSION})),
    "cancel": accepted_or([[{"event": "app/cancel", "if": "event.data.id == async.data.id", "timeout": "1d"}],
                           [{"event": "app/cancel", "timeout": "2999-01-01T00:00:00Z"}],
                           [{"event": "app/cancel", "timeout": "999999999d"}]],
                          st.lists(fields(event=TEXT, timeout=DURATION, **{"if": EXPRESSION}), max_size=6) | JSON),
    "priority": accepted_or([{"run": "event.data.n"}, {"run": "event.data.n * 1000000"}], fields(run=EXPRESSION)),
    "idempotency": accepted_or(["event.data.id", "event.data"], EXPRESSION | JSON),
    "timeouts": accepted_or([{"start": "10m", "finish": "1h"}, {"start": "999999999d", "finish": "999999999d"}],
                            fields(start=DURATION, finish=DURATION)),
    "singleton": accepted_or([{"mode": "skip"}, {"mode": "cancel", "key": "event.data.user"}],
                             fields(key=EXPRESSION, mode=st.sampled_from(["skip", "cancel", "SKIP", "other"]) | TEXT)),
}
VALID_STEPS = {"step": {"id": "step", "name": "step",
                        "runtime": {"type": "http", "url": f"{APP_URL}?fnId=fuzz-app-fn&stepId=step"}}}
# A function whose id, name and step are right, with a few fuzzed fields: what validation of those fields sees.
FUNCTION_WITH_FUZZED_FIELDS = st.lists(st.sampled_from(sorted(FUNCTION_FIELDS)), max_size=4, unique=True).flatmap(
    lambda keys: st.fixed_dictionaries({"id": st.just("fuzz-app-fn"), "name": st.just("Fn"), "steps": st.just(VALID_STEPS),
                                        **{key: FUNCTION_FIELDS[key] for key in keys}}))
FUNCTION = FUNCTION_WITH_FUZZED_FIELDS | st.fixed_dictionaries({}, optional={
    "id": TEXT, "name": TEXT, "steps": st.dictionaries(TEXT, STEP, max_size=2) | JSON, **FUNCTION_FIELDS,
})
REGISTER_BODY = st.fixed_dictionaries({"appName": st.just("fuzz-app"), "url": st.just(APP_URL),
                                       "functions": st.lists(FUNCTION, max_size=3)}) | fields(
    url=st.sampled_from([APP_URL, APP_URL + "?deployId=1&probe=trust", ""]) | TEXT | JSON,
    v=TEXT | JSON, deployType=TEXT | JSON, sdk=TEXT | JSON | st.just("py:v0.5.19"), framework=TEXT | JSON,
    appName=TEXT | st.just("fuzz-app") | JSON, appname=TEXT | JSON, appVersion=TEXT | JSON,
    functions=st.lists(FUNCTION, max_size=3) | JSON, capabilities=JSON, headers=JSON, idempotencyKey=TEXT | JSON,
    featureObservations=JSON,
)


def valid_function(index: int, event: str, concurrency: int, retries: int) -> dict:
    slug = f"fuzz-app-fn-{index}"
    return {"id": slug, "name": f"Fn {index}", "triggers": [{"event": event}], "concurrency": concurrency,
            "steps": {"step": {"id": "step", "name": "step", "retries": {"attempts": retries},
                               "runtime": {"type": "http", "url": f"{APP_URL}?fnId={slug}&stepId=step"}}}}


VALID_FUNCTIONS = st.lists(
    st.builds(lambda event, concurrency, retries: (event, concurrency, retries),
              st.from_regex(r"[a-z]{1,10}/[a-z.]{1,20}", fullmatch=True), st.integers(0, 100), st.integers(0, 30)),
    min_size=1, max_size=4,
).map(lambda items: [valid_function(i, *item) for i, item in enumerate(items)])


def register(client: Client, body: bytes | str, **headers: str) -> Any:
    return client.post("/fn/register", body, content_type="application/json",
                       headers={"Authorization": f"Bearer {SIGNING_KEY}", **headers})


def check_register_answer(answer: Any) -> None:
    assert answer.status_code < 500, answer.content
    payload = answer.json()
    if answer.status_code == 200:
        assert set(payload) == {"ok", "modified", "app_id", "sync_id"} and payload["ok"] is True
        assert App.objects.filter(id=payload["app_id"], error="").exists()
    else:
        assert answer.status_code == 400, answer.content
        assert isinstance(payload["error"], str) and payload["error"]
        assert set(payload) in ({"error"}, {"error", "status", "data"})
        if "status" in payload:
            assert payload["status"] == 400 and payload["error"] == "At least one function is invalid"


@FUZZ
@given(body=REGISTER_BODY, server_kind=st.sampled_from([None, "cloud", "dev"]))
def test_any_register_body_is_synced_or_refused_with_400(client: Client, body: Any, server_kind: str | None) -> None:
    show(body=body, server_kind=server_kind)
    headers = {"X-Inngest-Expected-Server-Kind": server_kind} if server_kind else {}
    with PRODUCTION, rolled_back():
        check_register_answer(register(client, json.dumps(body), **headers))


@FUZZ
@given(raw=RAW_BODIES)
def test_any_bytes_to_register_get_an_answer_below_500(client: Client, raw: bytes) -> None:
    show(raw=raw)
    with PRODUCTION, rolled_back():
        check_register_answer(register(client, raw))


@FUZZ
@given(functions=VALID_FUNCTIONS, app_name=st.from_regex(r"[a-z][a-z0-9-]{0,40}", fullmatch=True))
def test_valid_registrations_are_accepted_and_stored(client: Client, functions: list[dict], app_name: str) -> None:
    show(functions=functions, app_name=app_name)
    body = {"appName": app_name, "url": APP_URL, "sdk": "js:v3.40.0", "framework": "express", "v": "0.1",
            "functions": functions}
    with PRODUCTION, rolled_back():
        answer = register(client, json.dumps(body))
        assert answer.status_code == 200, answer.content
        stored = Function.objects.filter(app__name=app_name, is_archived=False)
        assert sorted(stored.values_list("slug", flat=True)) == sorted(f["id"] for f in functions)


@FUZZ
@given(function=FUNCTION_WITH_FUZZED_FIELDS, events=st.lists(WELL_FORMED_EVENT, min_size=1, max_size=4))
def test_events_for_any_accepted_function_config_are_stored_or_refused(client: Client, function: dict, events: list) -> None:
    function = {"triggers": [{"event": "app/ok"}, {"event": "shop/*"}], **function}
    show(function=function, events=events)
    body = {"appName": "fuzz-app", "url": APP_URL, "functions": [function]}
    with PRODUCTION, rolled_back():
        create_key("fuzz", "good-key")
        answer = register(client, json.dumps(body))
        check_register_answer(answer)
        event(f"register answered {answer.status_code}")
        check_ingest_answer(client.post("/e/good-key", json.dumps(events), content_type="application/json"), events)


@FUZZ
@given(authorization=st.text(st.characters(codec="latin-1"), max_size=80)
       | st.sampled_from(["Bearer ", f"Bearer {SIGNING_KEY}", "Bearer signkey-prod-" + "0" * 64, "Bearer é"]))
def test_any_authorization_header_gets_401_or_an_answer(client: Client, authorization: str) -> None:
    show(authorization=authorization)
    body = {"appName": "fuzz-auth", "url": APP_URL, "functions": []}
    with PRODUCTION, rolled_back():
        answer = client.post("/fn/register", json.dumps(body), content_type="application/json",
                             headers={"Authorization": authorization})
        assert answer.status_code in (200, 401), answer.content
        if answer.status_code == 401:
            assert answer.content == b"Authentication failed"


# --- the operator API (/api/v1), from its OpenAPI schema ---------------------------------------

# Django's application, not inngest_project.wsgi: that module is gunicorn's entry point and
# refuses this process's settings (production without keys, inngest_project/security.py).
schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())


@contextmanager
def connection_kept_open() -> Iterator[None]:
    """Django's WSGI handler closes the database connection after each request (it is not in
    autocommit inside the test's transaction); its test client turns that off, and so must a test
    that calls the WSGI app itself."""
    signals = (request_started, request_finished)
    for signal in signals:
        signal.disconnect(close_old_connections)
    try:
        yield
    finally:
        for signal in signals:
            signal.connect(close_old_connections)


@pytest.fixture
def operator_headers(client: Client) -> dict[str, str]:
    """A token, and rows for the listings to show: a function, an event, a run with a step and a call."""
    functions = [{"id": "fuzz-ops", "name": "Ops", "triggers": [{"event": "ops/go"}, {"cron": "0 9 * * *"}], "concurrency": 2}]
    with override_settings(INNGEST_OPERATOR_LOGIN=False):
        assert client.post("/api/v1/functions", {"app": "ops", "url": APP_URL, "functions": functions},
                           content_type="application/json").status_code == 201
        events = [{"name": "ops/go", "data": {"n": 1}}]
        assert client.post("/api/v1/events", events, content_type="application/json").status_code == 200
    run = Run.objects.get()
    Step.objects.create(run=run, step_id="a" * 40, name="charge", op="StepRun", output={"data": 1}, position=0)
    StepAttempt.objects.create(run=run, step_target="step", attempt=0, status_code=206, opcode="StepRun",
                               started_at=run.created_at, ended_at=run.created_at)
    token = Token.objects.create(user=User.objects.create_user("fuzz-operator"))
    return {"Authorization": f"Token {token.key}"}


@schema.parametrize()
@FUZZ
def test_operator_api_answers_every_generated_request_without_a_server_error(case: Any, operator_headers: dict) -> None:
    # The answers are checked against the schema; the requests are not (negative_data_rejection,
    # positive_data_acceptance): the API takes what Inngest takes (a null `ts`, a float one) and
    # refuses more than a schema can say (reserved event names, invalid function configs).
    with override_settings(INNGEST_OPERATOR_LOGIN=True), connection_kept_open(), rolled_back():
        case.call_and_validate(headers=operator_headers, checks=[
            not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
        ])


@FUZZ
@given(raw=RAW_BODIES, path=st.sampled_from(["/api/v1/events", "/api/v1/functions"]))
def test_any_bytes_to_the_operator_api_get_an_answer_below_500(client: Client, operator_headers: dict, raw: bytes,
                                                              path: str) -> None:
    show(raw=raw, path=path)
    with override_settings(INNGEST_OPERATOR_LOGIN=True), rolled_back():
        answer = client.post(path, raw, content_type="application/json", headers=operator_headers)
        assert answer.status_code < 500, answer.content
        assert answer.status_code in (200, 201, 400), answer.content
        payload = answer.json()
        if path == "/api/v1/events" and "ids" in payload:
            assert Event.objects.filter(internal_id__in=payload["ids"]).count() == len(payload["ids"])


# Run filters are free text in the schema, but `since` and `until` are read as dates and `before` as a run id.
QUERY_TEXT = st.text(st.characters(codec="utf-8"), max_size=30) | st.datetimes().map(datetime.isoformat) | st.sampled_from([
    "0001-01-01", "9999-12-31T23:59:59", "1969-12-31T23:59:59+14:00", "2026-01-01T00:00", "01ARZ3NDEKTSV4RRFFQ69G5FAV", "a\x00",
])


@FUZZ
@given(params=st.dictionaries(st.sampled_from(["status", "function", "event_name", "since", "until", "before"]), QUERY_TEXT),
       run_id=QUERY_TEXT)
def test_any_run_query_gets_a_page_and_any_run_id_a_run_or_404(client: Client, operator_headers: dict, params: dict,
                                                                run_id: str) -> None:
    show(params=params, run_id=run_id)
    with override_settings(INNGEST_OPERATOR_LOGIN=True), rolled_back():
        page = client.get("/api/v1/runs", params, headers=operator_headers)
        if any("\x00" in value for value in params.values()):  # refused before the view: RefuseNulMiddleware
            assert page.status_code == 400, page.content
        else:
            assert page.status_code == 200, page.content
            assert set(page.json()) == {"data", "next"}
        detail = client.get("/api/v1/runs/" + quote(run_id, safe=""), headers=operator_headers)
        assert detail.status_code in ((400,) if "\x00" in run_id else (200, 404)), detail.content
