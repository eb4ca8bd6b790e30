"""One function's expressions that cannot be evaluated hurt nobody else: `POST /e/` answers 200,
the other functions' runs start, and the failures are counted on the function and shown.

The hostile trigger expressions are stored as rows (as a sync before the caps stored them):
sync now refuses the ones over a limit (tests/functions/test_expression_failures.py)."""
from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Iterator

import pytest
from django.test import Client, override_settings
from django.utils import timezone

from events import group_commit
from functions.models import ExpressionFailure
from runs import creation
from runs.flow_control import gates
from runs.models import PendingCall, Run, RunStatus, Step, Wait
from tests.events.test_expression_limits import NESTED_MAP_3, PARENS_300
from tests.factories import make_function

# Committed for real: failures are written after the transaction that evaluated them commits.
pytestmark = pytest.mark.django_db(transaction=True)

HOSTILE = {
    "300 parentheses": (PARENS_300, "nests more than 75 brackets deep"),
    "date of 1e300": ("date(1e300) > now()", "OverflowError"),
    "deep json_parse": ("json_parse(event.data.s).a == 1", "nested too deeply to evaluate"),
    "nested map over 60": (NESTED_MAP_3, "evaluation stopped"),
}


@pytest.fixture(autouse=True)
def stop_group_commit() -> Iterator[None]:
    yield
    group_commit.shutdown()  # its thread's connection would keep the test database open


EVENT = {"name": "shop/order", "data": {"a": 1, "s": "[" * 5000 + "]" * 5000, "l": list(range(60))}}


def post(client: Client, body: object):
    return client.post("/e/some-key", data=json.dumps(body), content_type="application/json")


@override_settings(INNGEST_OPERATOR_LOGIN=False)
def test_poisoned_triggers_beside_a_healthy_function(client: Client, caplog: pytest.LogCaptureFixture) -> None:
    healthy = make_function("shop/order", slug="healthy")
    poisoned = {name: make_function("shop/order", expression=source, slug=f"poisoned-{index}")
                for index, (name, (source, _)) in enumerate(HOSTILE.items())}
    caplog.set_level(logging.WARNING, logger="functions.expression_failures")
    for _ in range(3):
        answer = post(client, EVENT)
        assert answer.status_code == 200 and len(answer.json()["ids"]) == 1
    assert Run.objects.filter(function=healthy).count() == 3
    assert not Run.objects.exclude(function=healthy).exists()
    for name, function in poisoned.items():
        failure = ExpressionFailure.objects.get(function=function)
        assert failure.field == 'trigger "shop/order" expression' and failure.count == 3
        assert HOSTILE[name][1] in failure.message
    logged = [r for r in caplog.records if r.name == "functions.expression_failures"]
    assert len(logged) == len(HOSTILE)  # once per function, not once per event
    listing = client.get("/functions/").content.decode()
    assert listing.count("expression error: trigger &quot;shop/order&quot; expression") == len(HOSTILE)
    assert "3 times, last at" in listing
    page = client.get(f"/functions/{poisoned['date of 1e300'].slug}").content.decode()
    assert "Expression errors" in page and "OverflowError: timestamp out of range" in page


def test_failing_expressions_are_counted_for_prometheus(client: Client) -> None:
    function = make_function("shop/order", expression="date(1e300) > now()", slug="poisoned-metrics")
    post(client, [EVENT, EVENT])
    text = client.get("/metrics").content.decode()
    line = f'inngest_expression_errors_total{{field="trigger \\"shop/order\\" expression",function="{function.slug}"}} 2.0'
    assert line in text


def waiting_run(expression: str, event_name: str = "shop/approved") -> Wait:
    function = make_function("shop/start")
    (run,) = creation.create_runs([creation.RunRequest(function, None, [{"name": "shop/start", "data": {"id": 7}}], "k")])
    Run.objects.filter(id=run.id).update(status=RunStatus.RUNNING)
    PendingCall.objects.filter(run=run).delete()
    return Wait.objects.create(run=run, step_id="w1", step_name="approval", event_name=event_name,
                               expression=expression, expires_at=timezone.now() + timedelta(hours=1))


@pytest.mark.parametrize("name", list(HOSTILE))
def test_poisoned_wait_condition_is_no_match_and_other_waits_still_resume(client: Client, name: str) -> None:
    source, reason = HOSTILE[name]
    poisoned = waiting_run(source.replace("event.data", "async.data"))
    healthy = waiting_run("event.data.id == async.data.id")
    answer = post(client, {**EVENT, "name": "shop/approved", "data": {**EVENT["data"], "id": 7}})
    assert answer.status_code == 200
    assert Step.objects.get(run=healthy.run).output["data"]["id"] == 7
    assert Wait.objects.filter(id=poisoned.id).exists() and not Step.objects.filter(run=poisoned.run).exists()
    failure = ExpressionFailure.objects.get(function=poisoned.run.function)
    assert failure.field == 'waitForEvent "approval" if' and reason in failure.message


def test_poisoned_cancel_condition_leaves_the_run_alone(client: Client) -> None:
    wait = waiting_run("async.data.n > date(1e300)", event_name="shop/cancel")
    Wait.objects.filter(id=wait.id).update(kind="cancel", step_id="cancel-0")
    assert post(client, {"name": "shop/cancel", "data": {"n": 1}}).status_code == 200
    assert Run.objects.get(id=wait.run_id).status == RunStatus.RUNNING
    assert ExpressionFailure.objects.get(function=wait.run.function).field == 'cancel "shop/cancel" if'


def test_bulk_cancellation_refuses_an_expression_over_the_limits_and_counts_failing_ones(client: Client) -> None:
    function = make_function()
    (run,) = creation.create_runs([creation.RunRequest(function, None, [{"name": "e", "data": {"plan": "pro"}}], "p")])
    body = {"app_id": "factory-app", "function_id": function.slug,
            "started_before": (timezone.now() + timedelta(seconds=1)).isoformat()}
    refused = client.post("/v1/cancellations", data=json.dumps({**body, "if": PARENS_300}), content_type="application/json")
    assert refused.status_code == 400 and "nests more than 75 brackets deep" in refused.json()["error"]
    answer = client.post("/v1/cancellations", data=json.dumps({**body, "if": "date(1e300) > now()"}),
                         content_type="application/json")
    assert answer.status_code == 200 and answer.json()["data"]["cancelled_runs"] == 0
    assert Run.objects.get(id=run.id).status != RunStatus.CANCELLED
    assert ExpressionFailure.objects.get(function=function).field == "bulk cancellation if"


def test_failing_batch_condition_runs_each_event_on_its_own(client: Client) -> None:
    function = make_function("shop/batched")
    function.config = {"batchEvents": {"maxSize": 10, "timeout": "60s", "if": "date(1e300) > now()"}}
    function.save()
    assert post(client, [{"name": "shop/batched", "data": {"n": n}} for n in range(3)]).status_code == 200
    assert Run.objects.filter(function=function).count() == 3  # not held for a batch
    assert ExpressionFailure.objects.get(function=function).count == 3


def test_failing_key_expressions_give_the_invalid_key_and_are_counted(client: Client) -> None:
    function = make_function("shop/keyed")
    function.config = {"concurrency": [{"limit": 5, "key": "event.data.n / event.data.zero"}],
                       "rateLimit": {"limit": 10, "period": "1m", "key": "date(1e300)"}}
    function.save()
    answer = post(client, {"name": "shop/keyed", "data": {"n": 1, "zero": 0}})
    assert answer.status_code == 200
    run = Run.objects.select_related("function").get(function=function)
    assert run.flow_action == ""  # admitted under the shared invalid key
    (slot,) = gates.slots_for(run, 1, 30)
    assert slot.label == "5 at once for key '<invalid>'"
    fields = dict(ExpressionFailure.objects.filter(function=function).values_list("field", "count"))
    assert fields == {"rateLimit.key": 1, "concurrency.key": 1}
