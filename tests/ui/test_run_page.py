"""A run's page without a browser: header durations, the waterfall's rows and words, errors with
their stack, retries and cancellations said in words, reruns linked both ways, live until the end."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client, override_settings
from django.utils import timezone

from runs.models import PendingCall, Run, RunStatus, Step, StepAttempt
from tests.factories import make_function
from ui.templatetags.ui_format import duration

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("open_ui")]
STACK = "Traceback (most recent call last):\n  File \"app.py\", line 3, in fn\nValueError: boom"


@pytest.fixture
def open_ui():
    with override_settings(INNGEST_OPERATOR_LOGIN=False):
        yield


def make_run(status: str = RunStatus.COMPLETED, **fields) -> Run:
    created = timezone.now() - timedelta(seconds=10)
    return Run.objects.create(id=fields.pop("id", "01RUNPAGE0000000000000000A"), function=make_function(), events=[{"name": "t"}],
                              status=status, created_at=created, started_at=created + timedelta(milliseconds=250), **fields)


def attempt(run: Run, offset_ms: int, length_ms: int, **fields) -> StepAttempt:
    start = run.created_at + timedelta(milliseconds=offset_ms)
    return StepAttempt.objects.create(run=run, attempt=fields.pop("attempt", 0), started_at=start,
                                      ended_at=start + timedelta(milliseconds=length_ms), **fields)


def test_durations_read_in_ms_s_min_and_h() -> None:
    assert [duration(v) for v in (0.4, 12, 850, 3_210, 42_000, 125_000, 7_380_000)] == [
        "0.40 ms", "12 ms", "850 ms", "3.2 s", "42 s", "2 min 05 s", "2 h 03 min"]
    assert duration(timedelta(seconds=1.5)) == "1.5 s"


def test_the_header_has_queue_delay_and_total_duration_and_each_call_a_bar() -> None:
    run = make_run(ended_at=None)
    Run.objects.filter(id=run.id).update(ended_at=run.created_at + timedelta(milliseconds=1_750))
    attempt(run, 250, 500, step_target="step", step_id="a1", step_name="load user", status_code=206, opcode="StepRun",
            output={"id": 1})
    attempt(run, 800, 950, step_target="step", status_code=200, opcode="RunComplete", output={"ok": True})
    page = Client().get(f"/runs/{run.id}").content.decode()
    assert "Queue delay</b>250 ms" in page and "Duration</b>1.5 s" in page
    assert "load user</strong> <span class=\"words\">step ran" in page
    assert "function returned its result" in page and "queued 50 ms" in page  # due when the step's call ended
    assert 'class="run" style="left: 14.286%; width: 28.571%"' in page  # 250..750 ms of 1,750


def test_a_failed_run_shows_its_error_as_name_message_and_stack() -> None:
    run = make_run(RunStatus.FAILED, output={"name": "ValueError", "message": "boom", "stack": STACK},
                   ended_at=timezone.now())
    attempt(run, 300, 20, step_target="step", status_code=500, opcode="Error",
            error={"name": "ValueError", "message": "boom", "stack": STACK})
    page = Client().get(f"/runs/{run.id}").content.decode()
    assert '<span class="name">ValueError</span>: <span class="message">boom</span>' in page
    assert 'line 3, in fn\nValueError: boom</pre>' in page  # real line breaks, not "\n" escapes
    assert "function threw an error; no retries left, the run failed" in page


def test_a_waiting_retry_says_when_it_is_scheduled() -> None:
    run = make_run(RunStatus.RUNNING)
    attempt(run, 300, 20, step_target="s1", step_id="s1", step_name="charge card", status_code=206, opcode="StepError",
            error={"name": "Error", "message": "card declined"})
    due = timezone.now() + timedelta(seconds=15)
    PendingCall.objects.create(run=run, step_target="s1", attempt=1, due_at=due)
    page = Client().get(f"/runs/{run.id}").content.decode()
    assert "step threw an error; attempt 2 scheduled" in page
    assert f"attempt 2 scheduled at {due:%H:%M:%S} UTC" in page and "card declined" in page
    assert 'hx-get="/runs/{}/live"'.format(run.id) in page  # live while it runs


def test_an_ended_runs_live_fragment_stops_the_polling() -> None:
    run = make_run(RunStatus.RUNNING)
    assert "hx-trigger" in Client().get(f"/runs/{run.id}/live").content.decode()
    Run.objects.filter(id=run.id).update(status=RunStatus.COMPLETED, ended_at=timezone.now(), output={"done": 1})
    ended = Client().get(f"/runs/{run.id}/live").content.decode()
    assert "hx-trigger" not in ended and "Completed" in ended


def test_a_cancelled_run_says_who_cancelled_it() -> None:
    run = make_run(RunStatus.RUNNING)
    assert Client().post(f"/runs/{run.id}/cancel").status_code == 302
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and run.cancelled_by == "the UI"
    page = Client().get(f"/runs/{run.id}").content.decode()
    assert "Cancelled by the UI" in page and "cancelled by the UI" in page  # header and timeline


def test_rerun_from_a_step_keeps_the_steps_before_it_and_links_both_ways() -> None:
    run = make_run(RunStatus.FAILED, ended_at=timezone.now(), event=None)
    for position, (step_id, name) in enumerate([("h1", "fetch"), ("h2", "transform"), ("h3", "save")]):
        Step.objects.create(run=run, step_id=step_id, name=name, op="StepRun", output={"data": {"n": position}}, position=position)
    answer = Client().post(f"/runs/{run.id}/rerun", {"step_id": "h2", "use_output": "1", "output": '{"n": 41}'})
    new_run = Run.objects.exclude(id=run.id).get()
    assert answer["Location"] == f"/runs/{new_run.id}"
    assert list(Step.objects.filter(run=new_run).order_by("position").values_list("step_id", "output")) == [
        ("h1", {"data": {"n": 0}}), ("h2", {"data": {"n": 41}})]
    assert (new_run.rerun_of_id, new_run.rerun_from_step) == (run.id, "transform")
    rerun_page = Client().get(f"/runs/{new_run.id}").content.decode()
    assert f'href="/runs/{run.id}"' in rerun_page
    assert f"fetch</strong> <span class=\"words\">kept from run {run.id}" in rerun_page
    assert "transform</strong> <span class=\"words\">output given for this rerun" in rerun_page
    assert f'href="/runs/{new_run.id}"' in Client().get(f"/runs/{run.id}").content.decode()

    Client().post(f"/runs/{run.id}/rerun", {"step_id": "h2", "use_output": "0"})
    again = Run.objects.exclude(id__in=[run.id, new_run.id]).get()
    assert list(Step.objects.filter(run=again).values_list("step_id", flat=True)) == ["h1"]  # h2 runs again


def test_a_rerun_with_output_that_is_not_json_keeps_what_was_typed() -> None:
    run = make_run(RunStatus.COMPLETED, ended_at=timezone.now())
    Step.objects.create(run=run, step_id="h1", name="fetch", op="StepRun", output={"data": 1}, position=0)
    answer = Client().post(f"/runs/{run.id}/rerun", {"step_id": "h1", "use_output": "1", "output": "{oops"})
    assert answer.status_code == 400 and "{oops</textarea>" in answer.content.decode()
    assert Run.objects.count() == 1


def test_a_function_failed_events_page_shows_the_error_with_its_stack() -> None:
    from events.models import Event

    Event.objects.create(internal_id="01FAILEDEVENT0000000000000", name="inngest/function.failed", event_id="r1", ts=0,
                         data={"function_id": "f", "run_id": "r1", "error": {"name": "ValueError", "message": "boom", "stack": STACK}})
    page = Client().get("/events/01FAILEDEVENT0000000000000").content.decode()
    assert '<span class="name">ValueError</span>' in page and 'line 3, in fn\nValueError: boom</pre>' in page
