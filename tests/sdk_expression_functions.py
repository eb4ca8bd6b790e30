"""The SDK app's functions with hostile expressions, beside a healthy one on the same event
(tests/executor/test_expressions_e2e.py)."""
from __future__ import annotations

import datetime

import inngest

# Compiles, and fails every evaluation: a timestamp out of range (OverflowError in Python).
FAILING_EXPRESSION = "date(1e300) > now()"


def expression_functions(client: inngest.Inngest) -> list[inngest.Function]:
    @client.create_function(fn_id="poisoned-trigger",
                            trigger=inngest.TriggerEvent(event="test/poisoned", expression=FAILING_EXPRESSION))
    def poisoned_trigger(ctx: inngest.ContextSync) -> str:
        return "must never run"

    @client.create_function(fn_id="beside-poisoned", trigger=inngest.TriggerEvent(event="test/poisoned"))
    def beside_poisoned(ctx: inngest.ContextSync) -> str:
        return ctx.step.run("work", lambda: f"ok {ctx.event.data['n']}")

    @client.create_function(fn_id="poisoned-wait", trigger=inngest.TriggerEvent(event="test/poisoned-wait"))
    def poisoned_wait(ctx: inngest.ContextSync) -> dict:
        # The `if` comes from the event: the tests try the hostile ones.
        approval = ctx.step.wait_for_event(
            "approval", event="test/poisoned-approve", if_exp=ctx.event.data["if"],
            timeout=datetime.timedelta(seconds=ctx.event.data.get("timeout", 3)),
        )
        return {"approval": approval.data if approval else None}

    return [poisoned_trigger, beside_poisoned, poisoned_wait]
