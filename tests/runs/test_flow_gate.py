"""The concurrency gate on claimed calls: parking, waking, and lines with departed waiters."""
from __future__ import annotations

import pytest
from django.utils import timezone

from executor import flow_control
from executor.counters import counters
from runs import lifecycle
from runs.creation import RunRequest, create_runs
from runs.models import PendingCall, Run
from tests.factories import make_function

pytestmark = pytest.mark.django_db


def claim_through_gate(call: PendingCall) -> list:
    claimed = lifecycle.claim_call(call.id, "worker", 30)
    slots = flow_control.slots_for(claimed.run, claimed.id, 30)
    full = flow_control.take_slots(claimed, slots)
    if full is not None:
        flow_control.park(claimed, "worker", full)
    return slots


def test_a_released_slot_skips_waiters_whose_run_ended_and_wakes_the_next() -> None:
    function = make_function()
    function.config = {"concurrency": 1}
    function.save()
    runs = create_runs([RunRequest(function, None, [{"name": "test/event", "data": {}}], f"key-{i}") for i in range(3)])
    calls = [PendingCall.objects.get(run=run) for run in runs]
    slots = [claim_through_gate(call) for call in calls]
    assert [bool(PendingCall.objects.get(id=c.id).parked_on) for c in calls] == [False, True, True]
    assert Run.objects.get(id=runs[1].id).flow_reason == "concurrency: 1 at once; waited for a free slot"

    lifecycle.cancel_run(Run.objects.select_related("function").get(id=runs[1].id))  # leaves its place in line
    flow_control.give_back(slots[0])

    woken = PendingCall.objects.get(id=calls[2].id)
    assert woken.parked_on == "" and woken.due_at <= timezone.now()
    assert counters().line(slots[2][0], 10) == [flow_control.line_member(calls[2].id)]
    assert claim_through_gate(woken) == slots[2] and PendingCall.objects.get(id=woken.id).parked_on == ""


def test_functions_without_concurrency_take_no_slot() -> None:
    (run,) = create_runs([RunRequest(make_function(), None, [{"name": "test/event"}], "only")])
    assert flow_control.slots_for(run, 1, 30) == []


def test_env_scoped_limits_share_one_line_across_functions_and_fn_scoped_ones_do_not() -> None:
    shared = {"concurrency": [{"limit": 3, "key": "event.data.tenant", "scope": "env"}]}
    own = {"concurrency": [{"limit": 3, "key": "event.data.tenant"}]}
    functions = []
    for config in (shared, shared, own, own):
        function = make_function()
        function.config = config
        function.save()
        functions.append(function)
    runs = [create_runs([RunRequest(f, None, [{"name": "test/event", "data": {"tenant": "t1"}}], f"k{i}")])[0]
            for i, f in enumerate(functions)]
    keys = [flow_control.slots_for(run, 1, 30)[0].key for run in runs]
    assert keys[0] == keys[1]  # env scope: one limit for the key across functions
    assert len({keys[0], keys[2], keys[3]}) == 3  # fn scope: a line per function
