"""Expressions over the limits are refused at sync, naming the function and the field; failures at
evaluation are counted on the function once the evaluating transaction commits."""
from __future__ import annotations

import pytest
from django.db import transaction
from django.test import Client

from functions.expression_failures import expression_holds, expression_value
from functions.models import ExpressionFailure, Function
from tests.events.test_expression_limits import MEGABYTES, PARENS_300
from tests.factories import make_function
from tests.functions.test_register_api import function_config, python_sdk_body, register

L = "event.data.l"
FOUR_NESTED = f"{L}.map(a, {L}.map(b, {L}.exists(c, {L}.all(d, d > c))))"
LONG = "event.data.a == 1 || " * 250 + "true"


@pytest.mark.django_db
@pytest.mark.parametrize("extra, detail", [
    ({"triggers": [{"event": "app/evt", "expression": PARENS_300}]},
     "Function 'a' has an invalid trigger \"app/evt\" expression: the expression nests more than 75 brackets deep"),
    ({"triggers": [{"event": "app/evt", "expression": MEGABYTES}]},
     "Function 'a' has an invalid trigger \"app/evt\" expression: the expression is 1,470,004 characters long; "
     "the limit is 4,096"),
    ({"cancel": [{"event": "app/stop", "if": LONG}]},
     "Function 'a' has an invalid configuration: cancel \"app/stop\" if: the expression is 5,254 characters long"),
    ({"concurrency": [{"limit": 1, "key": FOUR_NESTED}]},
     "Function 'a' has an invalid configuration: concurrency.key: the expression nests 4 comprehensions"),
    ({"batchEvents": {"maxSize": 5, "timeout": "5s", "if": " || ".join(["a == 1"] * 200)}},
     "Function 'a' has an invalid configuration: batchEvents.if: the expression nests 204 levels deep; the limit is 150"),
    ({"priority": {"run": "(" * 80 + "1" + ")" * 80}},
     "Function 'a' has an invalid configuration: priority.run: the expression nests more than 75 brackets deep"),
], ids=["trigger of 300 parentheses", "trigger of 1.4 MB", "long cancel if", "nested concurrency key", "deep batch if",
        "nested priority"])
def test_expression_over_a_limit_is_refused_at_sync_naming_function_and_field(client: Client, extra: dict,
                                                                               detail: str) -> None:
    answer = register(client, python_sdk_body(function_config("a", **extra)))
    assert answer.status_code == 400
    payload = answer.json()
    assert payload["error"] == "At least one function is invalid" and payload["status"] == 400
    (error,) = payload["data"]["errors"]
    assert error.startswith(detail) and len(error) < 600, error
    assert not Function.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_failures_in_one_transaction_are_one_row_counted_after_the_commit() -> None:
    function = make_function()
    with transaction.atomic():
        for n in range(5):
            assert expression_holds("event.data.n / 0 == 1", function.id, "trigger", {"data": {"n": n}}) is False
        assert not ExpressionFailure.objects.exists()  # not written inside the evaluating transaction
    failure = ExpressionFailure.objects.get()
    assert (failure.function_id, failure.field, failure.count) == (function.id, "trigger", 5)
    assert "cannot evaluate expression 'event.data.n / 0 == 1'" in failure.message
    assert failure.expression == "'event.data.n / 0 == 1'" and failure.first_at <= failure.last_at


@pytest.mark.django_db(transaction=True)
def test_failures_of_a_rolled_back_transaction_are_written_with_the_next_commit() -> None:
    function = make_function()
    with pytest.raises(RuntimeError), transaction.atomic():
        expression_holds("date(1e300) > now()", function.id, "trigger", {})
        raise RuntimeError("the ingest transaction failed")
    assert not ExpressionFailure.objects.exists()
    with transaction.atomic():
        assert expression_value("date(1e300)", function.id, "concurrency.key", {}, "<invalid>") == "<invalid>"
    assert dict(ExpressionFailure.objects.values_list("field", "count")) == {"trigger": 1, "concurrency.key": 1}


@pytest.mark.django_db(transaction=True)
def test_true_expressions_and_values_record_nothing() -> None:
    function = make_function()
    assert expression_holds("event.data.a == 1", function.id, "trigger", {"data": {"a": 1}}) is True
    assert expression_value("event.data.a + 1", function.id, "concurrency.key", {"data": {"a": 1}}, None) == 2
    assert expression_value("1 / 0", None, "", {}, "<invalid>") == "<invalid>"  # no function: not recorded
    assert not ExpressionFailure.objects.exists()


@pytest.mark.django_db
def test_a_sync_that_changes_the_config_forgets_the_recorded_failures(client: Client) -> None:
    assert register(client, python_sdk_body(function_config("a"), function_config("b"))).status_code == 200
    first, second = Function.objects.order_by("slug")
    for function in (first, second):
        ExpressionFailure.objects.create(function=function, field="trigger", expression="'x'", message="m", count=1)
    changed = function_config("a", triggers=[{"event": "app/evt", "expression": "event.data.a == 2"}])
    assert register(client, python_sdk_body(changed, function_config("b"))).status_code == 200
    assert list(ExpressionFailure.objects.values_list("function_id", flat=True)) == [second.id]
