"""Signal waits, deferred runs and run metadata as rows: uniqueness, resuming, events at the run's
end, the metadata endpoint's checks, and the run page that shows them."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from events.models import Event
from runs.decision_commands import AbortDefer, AddDefer, OpenWait
from runs import creation, lifecycle
from runs.defers import MAX_DEFER_INPUTS_BYTES, MAX_DEFERS_PER_RUN, defers_for_call, record_defers
from runs.models import DeferStatus, PendingCall, Run, RunMetadata, RunStatus, Step, Wait
from runs.run_metadata import folded_metadata, metadata_records
from runs.signals import open_signal_wait, send_signal
from runs.waits import expire_waits
from tests.factories import make_function

pytestmark = pytest.mark.django_db


def running_run(function=None) -> Run:
    function = function or make_function()
    (run,) = creation.create_runs([creation.RunRequest(function, None, [{"name": "t", "data": {}}], "")])
    Run.objects.filter(id=run.id).update(status=RunStatus.RUNNING)
    PendingCall.objects.filter(run=run).delete()
    run.refresh_from_db()
    return run


def signal_wait(name: str, replace: bool = False, step_id: str = "s1", seconds: int = 60) -> OpenWait:
    return OpenWait(step_id, "wait", "", "", timezone.now() + timedelta(seconds=seconds), kind="signal", signal=name,
                    replace_on_conflict=replace)


def test_a_signal_is_held_by_one_open_wait() -> None:
    first, second, third = running_run(), running_run(), running_run()
    assert open_signal_wait(first, signal_wait("sig")) is None
    assert open_signal_wait(first, signal_wait("sig")) is None  # the same wait again: nothing new
    assert "Signal conflict" in open_signal_wait(second, signal_wait("sig"))["message"]
    assert open_signal_wait(third, signal_wait("sig", replace=True)) is None
    assert dict(Wait.objects.values_list("run_id", "signal")) == {first.id: "", third.id: "sig"}


def test_sending_a_signal_resumes_its_run_once() -> None:
    run = running_run()
    open_signal_wait(run, signal_wait("go"))
    assert send_signal("go", {"n": 1}) == run.id
    assert Step.objects.get(run=run).output == {"data": {"signal": "go", "data": {"n": 1}}}
    assert PendingCall.objects.get(run=run).step_target == "step"
    assert send_signal("go", {}) is None


def test_a_timed_out_signal_wait_resumes_with_null_and_no_longer_takes_signals() -> None:
    run = running_run()
    open_signal_wait(run, signal_wait("late", seconds=-1))
    assert send_signal("late", {}) is None
    assert expire_waits() == 1 and Step.objects.get(run=run).output is None


def test_a_cancelled_runs_signal_is_free_again() -> None:
    run, other = running_run(), running_run()
    open_signal_wait(run, signal_wait("free"))
    lifecycle.cancel_run(run)
    assert open_signal_wait(other, signal_wait("free")) is None


def test_defers_are_insert_only_capped_and_aborted_without_their_input() -> None:
    run = running_run()
    record_defers(run, [AddDefer("d1", "app-later", {"n": 1}), AddDefer("d1", "app-other", {"n": 2}), AddDefer("d2", "app-later", {})])
    record_defers(run, [AbortDefer("d2"), AbortDefer("unknown")])
    assert defers_for_call(run) == {"d1": {"abortable": True}, "d2": {"abortable": False}}
    record_defers(run, [AddDefer(f"x{i}", "app-later", {}) for i in range(MAX_DEFERS_PER_RUN + 5)])
    assert run.defers.count() == MAX_DEFERS_PER_RUN
    aborted = run.defers.get(hashed_id="d2")
    assert aborted.status == DeferStatus.ABORTED and aborted.input is None
    assert run.defers.get(hashed_id="d1").fn_slug == "app-later"


def test_a_runs_first_defer_marks_it_and_a_run_without_defers_reads_none_at_its_end() -> None:
    run, plain = running_run(), running_run()
    record_defers(run, [AbortDefer("nothing-yet")])
    assert not Run.objects.get(id=run.id).has_defers
    record_defers(run, [AddDefer("d1", "app-later", {})])
    assert Run.objects.get(id=run.id).has_defers and not Run.objects.get(id=plain.id).has_defers
    with CaptureQueriesContext(connection) as queries:
        assert defers_for_call(plain) == {}
        assert lifecycle.finish_run(plain, RunStatus.COMPLETED, "ok")
    assert not [q for q in queries.captured_queries if "runs_rundefer" in q["sql"]]


def test_defers_past_the_inputs_cap_are_kept_as_rejected(settings) -> None:
    run = running_run()
    big = {"text": "x" * (MAX_DEFER_INPUTS_BYTES // 2)}
    record_defers(run, [AddDefer("a", "app-later", big), AddDefer("b", "app-later", big), AddDefer("c", "app-later", {"n": 1})])
    assert dict(run.defers.values_list("hashed_id", "status")) == {"a": "after_run", "b": "rejected", "c": "after_run"}
    assert defers_for_call(run)["b"] == {"abortable": False}


def test_a_runs_end_starts_its_deferred_runs_once() -> None:
    deferred = make_function(event="inngest/deferred.schedule", expression="event.data._inngest.fn_slug == 'app-later'")
    run = running_run()
    record_defers(run, [AddDefer("d1", "app-later", {"n": 1}), AddDefer("d2", "app-later", {"n": 2}), AbortDefer("d2"),
                        AddDefer("d3", "app-later", None, is_rejected=True)])
    assert lifecycle.finish_run(run, RunStatus.COMPLETED, "ok")
    (event,) = Event.objects.filter(name="inngest/deferred.schedule")
    assert event.data["n"] == 1 and event.data["_inngest"]["parent_run_id"] == run.id
    assert event.data["_inngest"]["fn_slug"] == "app-later" and event.data["_inngest"]["parent_fn_slug"] == run.function.slug
    (child,) = Run.objects.filter(function=deferred)
    assert child.events[0]["id"] == event.event_id and child.events[0]["id"][:10] == run.id[:10]


def test_a_deferred_run_gets_the_sessions_its_defer_carries() -> None:
    deferred = make_function(event="inngest/deferred.schedule", expression="event.data._inngest.fn_slug == 'app-later'")
    run = running_run()
    inherited_and_own = {"propagated_sessions": {"org": "acme", "team": "core"}, "sessions": {"org": "override"}}
    record_defers(run, [AddDefer("d1", "app-later", {"n": 1}, meta=inherited_and_own),
                        AddDefer("d2", "app-later", {"n": 2}, meta={"sessions": "not a map"}), AddDefer("d3", "app-later", {"n": 3})])
    assert lifecycle.finish_run(run, RunStatus.COMPLETED, "ok")
    metas = {event.data["n"]: event.meta for event in Event.objects.filter(name="inngest/deferred.schedule")}
    assert metas == {1: {"sessions": {"org": "override", "team": "core"}}, 3: None}  # d2's cannot be kept: it starts nothing
    started = {run.events[0]["data"]["n"]: run.events[0].get("meta") for run in Run.objects.filter(function=deferred)}
    assert started == {1: {"sessions": {"org": "override", "team": "core"}}, 3: None}
def test_a_run_ended_by_a_worker_that_did_not_see_its_defers_still_starts_them() -> None:
    make_function(event="inngest/deferred.schedule", expression="event.data._inngest.fn_slug == 'app-later'")
    run = running_run()
    record_defers(Run.objects.get(id=run.id), [AddDefer("d1", "app-later", {"n": 1})])  # another worker's copy
    assert not run.has_defers
    assert lifecycle.finish_run(run, RunStatus.COMPLETED, "ok")
    assert Event.objects.filter(name="inngest/deferred.schedule").count() == 1


def test_metadata_through_the_api_is_checked_then_kept_and_folded() -> None:
    run = running_run()
    url = f"/v1/runs/{run.id}/metadata"
    client = Client()
    ok = {"target": {"run_id": run.id}, "metadata": [{"kind": "userland.cost", "op": "merge", "values": {"usd": 1, "n": 1}}]}
    assert client.post(url, ok, content_type="application/json").status_code == 200
    add = {"target": {"run_id": run.id}, "metadata": [{"kind": "userland.cost", "op": "add", "values": {"usd": 2}}]}
    assert client.post(url, add, content_type="application/json").status_code == 200
    step = {"target": {"run_id": run.id, "step_id": "charge", "step_attempt": 0},
            "metadata": [{"kind": "userland.default", "op": "set", "values": {"k": "v"}}]}
    assert client.post(url, step, content_type="application/json").status_code == 200
    for bad in ({"metadata": [{"kind": "", "op": "merge", "values": {}}]}, {"metadata": []},
                {"metadata": [{"kind": "k", "op": "merge", "values": [1]}]}, {"target": {"span_id": "x"}, "metadata": ok["metadata"]}):
        assert client.post(url, bad, content_type="application/json").status_code == 400
    too_big = {"metadata": [{"kind": "k", "op": "merge", "values": {"x": "y" * 70_000}}]}
    assert client.post(url, too_big, content_type="application/json").status_code == 400
    assert [r["op"] for r in metadata_records(run.id)] == ["merge", "add", "set"]
    assert {(m["scope"], m["step_id"], m["kind"]): m["values"] for m in folded_metadata(run.id)} == {
        ("run", "", "userland.cost"): {"usd": 3, "n": 1}, ("step", "charge", "userland.default"): {"k": "v"}}
    assert RunMetadata.objects.get(step_id="charge").attempt == 0


@override_settings(INNGEST_OPERATOR_LOGIN=False)
def test_the_run_page_shows_metadata_defers_and_the_signal_it_waits_for() -> None:
    run = running_run()
    open_signal_wait(run, signal_wait("approval-7"))
    record_defers(run, [AddDefer("d1", "app-cleanup", {})])
    RunMetadata.objects.create(run=run, kind="userland.quality", op="merge", values={"score": 0.75})
    page = Client().get(f"/runs/{run.id}").content.decode()
    assert "waiting for signal approval-7" in page and "app-cleanup" in page
    assert "userland.quality" in page and "0.75" in page
