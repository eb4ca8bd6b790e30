"""UI pages without a browser: the number of queries does not grow with the rows shown, the live
fragments, the filters and paging, forms that keep what was typed, and who sees the admin link."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client, override_settings
from django.utils import timezone

from events.models import Event
from runs.models import Run, RunStatus, StepAttempt
from tests.factories import make_function

pytestmark = pytest.mark.django_db


def make_runs(count: int, names: tuple[str, ...] = ("test/e0", "test/e1", "test/e2")) -> list[Run]:
    functions = [make_function(), make_function()]
    events = Event.objects.bulk_create([
        Event(internal_id=f"01EVENT{i:019d}", name=names[i % len(names)], event_id=f"e{i}", data={}, user={}, ts=0)
        for i in range(count)
    ])
    return Run.objects.bulk_create([
        Run(id=f"01RUN{i:021d}", function=functions[i % 2], event=events[i], events=[{"name": "x"}],
            status=[RunStatus.COMPLETED, RunStatus.FAILED][i % 2])
        for i in range(count)
    ])


@override_settings(INNGEST_OPERATOR_LOGIN=False)
def test_the_runs_list_takes_the_same_few_queries_for_many_rows(django_assert_max_num_queries) -> None:
    runs = make_runs(120)
    client = Client()
    with django_assert_max_num_queries(4):
        page = client.get("/runs/")
    assert page.status_code == 200 and runs[-1].id in page.content.decode()
    assert "Older runs" in page.content.decode()  # 50 per page
    with django_assert_max_num_queries(4):
        filtered = client.get("/runs/", {"status": "failed", "event_name": "test/e1", "since": "2000-01-01T00:00"})
    assert filtered.status_code == 200
    with django_assert_max_num_queries(2):
        rows = client.get("/runs/rows", {"status": "failed"})  # what the live list polls
    assert rows.status_code == 200 and rows.content.decode().count("<tr>") == 50


@override_settings(INNGEST_OPERATOR_LOGIN=False)
def test_the_runs_list_polls_its_first_page_only_and_links_functions() -> None:
    runs = make_runs(60)
    first = Client().get("/runs/", {"status": "failed"}).content.decode()
    assert 'hx-get="/runs/rows?status=failed"' in first and 'hx-trigger="every 3s' in first
    assert f'href="/functions/{runs[1].function.slug}"' in first
    older = Client().get("/runs/", {"before": runs[-1].id}).content.decode()
    assert "hx-trigger" not in older and 'id="newest"' in older  # history does not poll


@override_settings(INNGEST_OPERATOR_LOGIN=False)
def test_runs_filter_by_wildcard_event_names() -> None:
    make_runs(6, names=("shop/order.created", "shop/order.paid", "user/signed.up"))
    client = Client()
    prefix = client.get("/runs/rows", {"event_name": "shop/*"}).content.decode()
    assert prefix.count("<tr>") == 4 and "user/signed.up" not in prefix
    middle = client.get("/runs/rows", {"event_name": "*/order.*"}).content.decode()
    assert middle.count("<tr>") == 4
    exact = client.get("/runs/rows", {"event_name": "user/signed.up"}).content.decode()
    assert exact.count("<tr>") == 2 and "shop/" not in exact


def make_events(names: list[str]) -> None:
    Event.objects.bulk_create([
        Event(internal_id=f"01EV{i:022d}", name=name, event_id=f"id{i}", data={}, user={}, ts=0) for i, name in enumerate(names)
    ])


@override_settings(INNGEST_OPERATOR_LOGIN=False)
def test_the_event_stream_hides_internal_events_unless_asked_and_filters_by_wildcard() -> None:
    make_events(["app/a.created", "inngest/function.finished", "app/b.created", "other/x"])
    client = Client()
    default = client.get("/events/").content.decode()
    assert "app/a.created" in default and "other/x" in default and "inngest/function.finished" not in default
    assert "inngest/function.finished" in client.get("/events/", {"internal": "1"}).content.decode()
    wildcard = client.get("/events/rows", {"name": "app/*"}).content.decode()
    assert wildcard.count("<tr>") == 2 and "other/x" not in wildcard
    assert client.get("/events/rows", {"name": "inngest/*"}).content.decode().count("<tr>") == 1  # named: shown


@override_settings(INNGEST_OPERATOR_LOGIN=False)
def test_the_event_stream_pages_with_a_cursor(django_assert_max_num_queries) -> None:
    make_events([f"app/e{i}" for i in range(120)])
    client = Client()
    with django_assert_max_num_queries(2):
        first = client.get("/events/").content.decode()
    assert first.count('<a class="mono" href="/events/') == 50 and "01EV0000000000000000000119" in first and 'id="older"' in first
    second = client.get("/events/", {"before": "01EV0000000000000000000070"}).content.decode()
    assert "01EV0000000000000000000069" in second and "01EV0000000000000000000070" not in second
    assert "hx-trigger" not in second.split("<tbody")[1].split(">")[0]  # an older page does not poll


@override_settings(INNGEST_OPERATOR_LOGIN=False)
def test_a_refused_test_event_keeps_what_was_typed() -> None:
    function = make_function()
    answer = Client().post(f"/functions/{function.slug}/send", {"name": "test/typed", "data": '{"a": 1,'})
    body = answer.content.decode()
    assert answer.status_code == 400 and "The data is not JSON" in body
    assert "{&quot;a&quot;: 1," in body and 'value="test/typed"' in body
    invoked = Client().post(f"/functions/{function.slug}/invoke", {"data": "[1, 2]"})
    assert invoked.status_code == 400 and "must be a JSON object" in invoked.content.decode()
    assert "[1, 2]" in invoked.content.decode()


@override_settings(INNGEST_OPERATOR_LOGIN=False)
def test_the_send_event_dialog_sends_any_event_and_keeps_input_on_error() -> None:
    make_function(event="shop/order.created")
    client = Client()
    refused = client.post("/events/send/post", {"name": "shop/order.created", "data": "not json", "id": "o-1"})
    assert refused.status_code == 400 and ">not json</textarea>" in refused.content.decode()
    assert 'value="o-1"' in refused.content.decode()
    sent = client.post("/events/send/post", {"name": "shop/order.created", "data": '{"order": 7}', "id": "o-1"})
    assert sent.status_code == 302
    event = Event.objects.get(name="shop/order.created")
    assert sent["Location"] == f"/events/{event.internal_id}" and event.data == {"order": 7} and event.event_id == "o-1"
    assert Run.objects.filter(event=event).count() == 1


@override_settings(INNGEST_OPERATOR_LOGIN=False)
def test_replaying_an_event_sends_it_again_as_a_new_event() -> None:
    make_function(event="shop/order.created")
    Client().post("/events/send/post", {"name": "shop/order.created", "data": '{"order": 8}', "id": "fixed"})
    original = Event.objects.get()
    replayed = Client().post(f"/events/{original.internal_id}/replay")
    copy = Event.objects.exclude(internal_id=original.internal_id).get()
    assert replayed["Location"] == f"/events/{copy.internal_id}"
    assert (copy.name, copy.data) == (original.name, original.data) and copy.event_id != "fixed"
    assert Run.objects.filter(event=copy).count() == 1  # a new id: not deduplicated against the first


@override_settings(INNGEST_OPERATOR_LOGIN=False)
def test_there_is_no_admin_link_where_no_one_can_sign_in() -> None:
    page = Client().get("/apps/").content.decode()
    assert 'href="/admin/"' not in page  # dev mode: no user, the admin's login could not be passed
    staff = User.objects.create_user("ops", password="pw", is_staff=True)
    client = Client()
    client.force_login(staff)
    assert 'href="/admin/"' in client.get("/apps/").content.decode()


def test_the_favicon_is_served() -> None:
    answer = Client().get("/favicon.ico")
    assert answer.status_code == 301 and answer["Location"].endswith("ui/favicon.svg")


@override_settings(INNGEST_OPERATOR_LOGIN=True)
def test_anonymous_users_are_sent_to_sign_in_in_production() -> None:
    for path in ("/runs/", "/runs/rows", "/events/rows", "/events/send"):
        answer = Client().get(path)
        assert answer.status_code == 302 and answer["Location"].startswith(f"/login/?next={path}")


@override_settings(INNGEST_OPERATOR_LOGIN=False)
def test_a_run_page_takes_the_same_few_queries_for_many_calls(django_assert_max_num_queries) -> None:
    (run,) = make_runs(1)
    now = timezone.now()
    StepAttempt.objects.bulk_create([
        StepAttempt(run=run, step_target="step", step_name=f"step {i}", attempt=0, status_code=206, opcode="StepRun",
                    started_at=now, ended_at=now)
        for i in range(60)
    ])
    with django_assert_max_num_queries(8):
        page = Client().get(f"/runs/{run.id}")
    assert page.status_code == 200 and page.content.decode().count("step ran") == 60
    with django_assert_max_num_queries(8):
        live = Client().get(f"/runs/{run.id}/live")
    assert live.status_code == 200 and live.content.decode().count("step ran") == 60
