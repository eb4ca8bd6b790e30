"""The cost `inngest.ai` metadata is given (runs/ai_costs.py): priced by model, kept when the caller
said it, and added on both ways metadata arrives."""
from __future__ import annotations

import pytest
from django.test import Client
from ulid import ULID

from runs.ai_costs import estimated_cost, with_estimated_cost
from runs.decision_commands import RecordMetadata
from runs.models import Run, RunMetadata, RunStatus
from runs.run_metadata import record_step_metadata
from tests.factories import make_function


@pytest.mark.parametrize("model, expected", [
    ("gpt-4.1-nano", 0.00003),  # 100 in at $0.10/M, 50 out at $0.40/M
    ("gpt-4.1-nano-2025-04-14", 0.00003),  # a dated snapshot takes its model's price
    ("openai/GPT-4.1-nano", 0.00003),  # provider prefix and case ignored
    ("gpt-4.1", 0.0006),  # not nano's price, nor nano gpt-4.1's
    ("claude-sonnet-4-20250514", 0.00105),
    ("gpt-4.1-nanobot", 0.0006),  # a variant of gpt-4.1, not of gpt-4.1-nano: a shared prefix is no match
    ("some-local-model", None),
    ("", None),
])
def test_a_calls_cost_is_priced_by_its_model(model: str, expected: float | None) -> None:
    assert estimated_cost(model, 100, 50) == expected


def test_the_serving_model_is_priced_first_then_the_requested_one() -> None:
    values = {"input_tokens": 1_000_000, "output_tokens": 0, "request_model": "gpt-4o", "response_model": "gpt-4o-mini-2024-07-18"}
    assert with_estimated_cost("inngest.ai", values)["estimated_cost"] == 0.15
    unknown_snapshot = {**values, "response_model": "house-model-7"}
    assert with_estimated_cost("inngest.ai", unknown_snapshot)["estimated_cost"] == 2.5


@pytest.mark.parametrize("kind, values", [
    ("inngest.ai", {"input_tokens": 10, "output_tokens": 10, "request_model": "gpt-4o", "estimated_cost": 7}),
    ("inngest.ai", {"input_tokens": 10, "output_tokens": 10, "request_model": "unknown"}),
    ("inngest.ai", {"input_tokens": 10}),
    ("userland.ai", {"input_tokens": 10, "output_tokens": 10, "request_model": "gpt-4o"}),
], ids=["the caller's own cost", "an unpriced model", "no model", "another kind"])
def test_values_that_cannot_or_need_not_be_priced_are_kept_as_they_came(kind: str, values: dict) -> None:
    assert with_estimated_cost(kind, values) == values


@pytest.mark.django_db
def test_ai_metadata_from_a_steps_op_and_from_the_api_is_stored_with_its_cost() -> None:
    run = Run.objects.create(id=str(ULID()), function=make_function(), status=RunStatus.RUNNING)
    usage = {"request_model": "gpt-4o-mini", "input_tokens": 1000, "output_tokens": 100}
    record_step_metadata(run.id, [RecordMetadata("ask", "inngest.ai", "step", "merge", usage)], attempt=0)
    body = {"target": {"run_id": run.id, "step_id": "ask"}, "metadata": [{"kind": "inngest.ai", "op": "merge", "values": usage}]}
    assert Client().post(f"/v1/runs/{run.id}/metadata", data=body, content_type="application/json").status_code == 200
    costs = [row.values["estimated_cost"] for row in RunMetadata.objects.filter(run=run).order_by("id")]
    assert costs == [0.00021, 0.00021]  # 1000 in at $0.15/M, 100 out at $0.60/M
