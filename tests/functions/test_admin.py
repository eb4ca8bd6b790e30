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
