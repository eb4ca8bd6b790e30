"""Production configuration: `check --deploy` is clean, and bad values stop the server at start."""
from __future__ import annotations

import secrets
import subprocess
import sys

import pytest

from tests.stacks import MANAGE, ROOT

PRODUCTION = {
    "PATH": "/usr/bin:/bin", "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/inngest", "REDIS_URL": "redis://127.0.0.1:6379/0",
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50), "INNGEST_SIGNING_KEY": "signkey-prod-" + "ab" * 32, "INNGEST_HTTPS": "true",
    "DJANGO_ALLOWED_HOSTS": "inngest.example.com",
}


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, MANAGE, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_check_deploy_is_clean_with_production_settings() -> None:
    done = manage(PRODUCTION, "check", "--deploy")
    assert done.returncode == 0, done.stderr
    assert "System check identified no issues" in done.stdout


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("INNGEST_LEASE_SECONDS", "soon", "INNGEST_LEASE_SECONDS"),
    ("INNGEST_LOG_FORMAT", "xml", "INNGEST_LOG_FORMAT must be json or text"),
    ("INNGEST_SIGNING_KEY_FALLBACK", "nothex", "INNGEST_SIGNING_KEY_FALLBACK must be a hex string"),
    ("INNGEST_HTTPS", "maybe", "INNGEST_HTTPS"),
])
def test_bad_configuration_stops_the_server_with_a_clear_error(variable: str, value: str, message: str) -> None:
    done = manage({**PRODUCTION, variable: value}, "check")
    assert done.returncode != 0
    assert message in done.stderr
