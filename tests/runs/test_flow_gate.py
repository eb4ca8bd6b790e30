"""The concurrency gate on claimed calls: parking, waking, lines with departed waiters, run-level
holds across re-syncs; and the batch cap."""
from __future__ import annotations

import json

import pytest
from django.utils import timezone

from functions.models import Function
from runs import lifecycle, pending_calls
from runs.creation import RunRequest, create_runs
from runs.flow_control import gates
from runs.flow_control.counters import counters
from runs.intake import ingest
from runs.models import EventBatch, PendingCall, Run, RunStatus
from tests.factories import make_function

pytestmark = pytest.mark.django_db


def claim_through_gate(call: PendingCall) -> list:
    claimed = pending_calls.claim_call(call.id, "worker", 30)
    slots = gates.slots_for(claimed.run, claimed.id, 30)
    full = gates.take_slots(claimed, slots)
    if full is not None:
        gates.park(claimed, "worker", full)
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
    gates.give_back(slots[0])

    woken = PendingCall.objects.get(id=calls[2].id)
    assert woken.parked_on == "" and woken.due_at <= timezone.now()
    assert counters().line(slots[2][0], 10) == [gates.line_member(calls[2].id)]
    assert claim_through_gate(woken) == slots[2] and PendingCall.objects.get(id=woken.id).parked_on == ""


def test_functions_without_concurrency_take_no_slot() -> None:
    (run,) = create_runs([RunRequest(make_function(), None, [{"name": "test/event"}], "only")])
    assert gates.slots_for(run, 1, 30) == []


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
    keys = [gates.slots_for(run, 1, 30)[0].key for run in runs]
    assert keys[0] == keys[1]  # env scope: one limit for the key across functions
    assert len({keys[0], keys[2], keys[3]}) == 3  # fn scope: a line per function


def resync(function: Function, config: dict) -> None:
    """What a sync that changed the function's configuration leaves in its row."""
    function.config = config
    function.version += 1
    function.save()


def test_a_run_gives_back_its_run_level_hold_under_the_key_it_took_it_with(django_capture_on_commit_callbacks) -> None:
    function = make_function()
    resync(function, {"concurrency": {"fn": [{"limit": 1, "key": "event.data.a"}]}})
    (first,) = create_runs([RunRequest(function, None, [{"name": "test/event", "data": {"a": "x"}}], "first")])
    (held,) = claim_through_gate(PendingCall.objects.get(run=first))
    assert held.is_per_run and counters().in_use(held, gates._ms(timezone.now())) == 1

    # The new key evaluates to the same value for the next run: it lines up behind the first.
    resync(function, {"concurrency": {"fn": [{"limit": 1, "key": "event.data.b"}]}})
    (second,) = create_runs([RunRequest(function, None, [{"name": "test/event", "data": {"b": "x"}}], "second")])
    waiting = PendingCall.objects.get(run=second)
    claim_through_gate(waiting)
    assert PendingCall.objects.get(id=waiting.id).parked_on == held.key

    ending = Run.objects.select_related("function").get(id=first.id)
    assert lifecycle.start_run(ending)
    with django_capture_on_commit_callbacks(execute=True):
        assert lifecycle.finish_run(ending, RunStatus.COMPLETED, None)

    assert counters().in_use(held, gates._ms(timezone.now())) == 0
    woken = PendingCall.objects.get(id=waiting.id)
    assert woken.parked_on == "" and woken.due_at <= timezone.now()
    assert claim_through_gate(woken)[0].key == held.key and PendingCall.objects.get(id=woken.id).parked_on == ""


def test_a_batch_synced_before_the_cap_starts_its_run_at_the_cap(settings) -> None:
    settings.INNGEST_MAX_BATCH_SIZE = 3
    function = make_function("test/batched")
    resync(function, {"batchEvents": {"maxSize": 5000, "timeout": "60s"}})
    ingest(json.dumps([{"name": "test/batched", "data": {"i": i}} for i in range(4)]).encode())
    (run,) = Run.objects.filter(function=function)
    assert [event["data"]["i"] for event in run.events] == [0, 1, 2]
    assert EventBatch.objects.get(function=function).payloads[0]["data"] == {"i": 3}


def test_a_run_the_singleton_skips_gives_its_throttle_token_back(django_capture_on_commit_callbacks) -> None:
    function = make_function()
    resync(function, {"singleton": {"mode": "skip"}, "throttle": {"limit": 1, "period": "1h"}})

    def start(key: str) -> Run:
        with django_capture_on_commit_callbacks(execute=True):
            (run,) = create_runs([RunRequest(function, None, [{"name": "test/event"}], key)])
        return run

    first = start("first")
    assert start("second").status == RunStatus.SKIPPED  # the first is active
    lifecycle.cancel_run(Run.objects.select_related("function").get(id=first.id))
    third = start("third")
    # One token was spent before it (the first run's), not two: it starts an hour out, not two.
    delay = PendingCall.objects.get(run=third).due_at - timezone.now()
    assert 3500 < delay.total_seconds() <= 3600
