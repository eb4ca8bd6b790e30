"""Secure by default: what production is missing, the system check that refuses it, /health that
says when it runs open on purpose (inngest_project/security.py)."""
from __future__ import annotations

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.test import Client, override_settings

from inngest_project.security import check_production_security, production_gaps, refuse_insecure_production

pytestmark = pytest.mark.django_db

CLOSED = {"IS_PRODUCTION": True, "INNGEST_SIGNING_KEY": "ab" * 32, "SECRET_KEY": "0123456789abcdef" * 4,
          "ALLOWED_HOSTS": ["inngest.example.com", "testserver"], "INNGEST_INSECURE": False, "INNGEST_DEV_MODE": False}
OPEN = {"IS_PRODUCTION": True, "INNGEST_SIGNING_KEY": "", "SECRET_KEY": settings.DEV_SECRET_KEY, "ALLOWED_HOSTS": ["*"],
        "INNGEST_INSECURE": False, "INNGEST_DEV_MODE": False}


def test_open_production_names_each_gap_and_the_check_refuses_it() -> None:
    with override_settings(**OPEN):
        gaps = production_gaps()
        messages = check_production_security()
        with pytest.raises(ImproperlyConfigured, match="production is not secure: INNGEST_SIGNING_KEY"):
            refuse_insecure_production()
    assert [gap.split(" ")[0] for gap in gaps] == ["INNGEST_SIGNING_KEY", "DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS"]
    assert [(m.level, m.id) for m in messages] == [(40, "inngest.E001"), (40, "inngest.E002"), (40, "inngest.E003")]
    assert "INNGEST_INSECURE=1" in messages[-1].hint


@pytest.mark.parametrize(("changes", "gap"), [
    ({"INNGEST_SIGNING_KEY": ""}, "INNGEST_SIGNING_KEY (start --signing-key) is not set"),
    ({"SECRET_KEY": "change-me"}, "DJANGO_SECRET_KEY is too weak: at least 50 characters"),
    ({"SECRET_KEY": "a" * 60}, "DJANGO_SECRET_KEY is too weak"),
    ({"SECRET_KEY": "django-insecure-" + "x1y2z3" * 10}, "DJANGO_SECRET_KEY is too weak"),
    ({"ALLOWED_HOSTS": ["inngest.example.com", "*"]}, "DJANGO_ALLOWED_HOSTS is not set (or is '*')"),
], ids=["no signing key", "short secret", "secret of one character", "django-insecure secret", "any host"])
def test_each_missing_piece_alone_is_a_gap(changes: dict, gap: str) -> None:
    with override_settings(**{**CLOSED, **changes}):
        (found,) = production_gaps()
    assert found.startswith(gap)


def test_closed_production_dev_mode_and_sqlite_have_no_gaps() -> None:
    with override_settings(**CLOSED):
        assert production_gaps() == [] and check_production_security() == []
        refuse_insecure_production()
    with override_settings(**{**OPEN, "INNGEST_DEV_MODE": True}):
        assert production_gaps() == []  # `manage.py dev` is open by design, even on PostgreSQL
    with override_settings(**{**OPEN, "IS_PRODUCTION": False}):
        assert production_gaps() == []


def test_insecure_runs_open_with_one_loud_warning_in_the_check_and_on_health(client: Client) -> None:
    with override_settings(**{**OPEN, "INNGEST_INSECURE": True}):
        (warning,) = check_production_security()
        refuse_insecure_production()  # allowed now
        body = client.get("/health").json()
    assert (warning.level, warning.id) == (30, "inngest.W001")
    assert warning.msg.startswith("INSECURE (INNGEST_INSECURE is set): INNGEST_SIGNING_KEY")
    assert body["status"] == 200 and body["insecure"] is True and body["warning"] == warning.msg
    with override_settings(**CLOSED):
        assert client.get("/health").json() == {"status": 200, "message": "OK"}
