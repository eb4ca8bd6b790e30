"""The Django admin works and its static files are served by the app itself."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.factories import make_function

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/admin/functions/function/", "/admin/functions/app/", "/admin/events/event/",
                                  "/admin/runs/run/"])
def test_admin_lists_render(client: Client, path: str) -> None:
    make_function()
    client.force_login(User.objects.create_superuser("admin", "a@example.com", "pw"))
    answer = client.get(path)
    assert answer.status_code == 200


def test_admin_static_files_are_served(client: Client) -> None:
    answer = client.get("/static/admin/css/base.css")
    assert answer.status_code == 200


def test_the_admin_shows_internal_state_and_changes_none_of_it(client: Client) -> None:
    from runs.models import Run

    function = make_function()
    run = Run.objects.create(id="01ADMINRUN0000000000000000", function=function, events=[], parallel_pending=["a"])
    client.force_login(User.objects.create_superuser("admin", "a@example.com", "pw"))
    page = client.get(f"/admin/runs/run/{run.id}/change/")
    assert page.status_code == 200 and 'name="parallel_pending"' not in page.content.decode()
    assert 'name="pending_calls-MAX_NUM_FORMS" value="0"' in page.content.decode()  # no pending call can be added
    changed = client.post(f"/admin/runs/run/{run.id}/change/", {"parallel_pending": "[]", "status": "completed"})
    assert changed.status_code == 403
    run.refresh_from_db()
    assert run.parallel_pending == ["a"] and run.status == "queued"
    assert client.get("/admin/runs/run/add/").status_code == 403
    assert client.post(f"/admin/functions/function/{function.id}/delete/", {"post": "yes"}).status_code == 403
    assert client.get(f"/admin/functions/function/{function.id}/change/").status_code == 200
