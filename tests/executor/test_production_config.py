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
    ("INNGEST_WORKER_POOL", "gevent", "INNGEST_WORKER_POOL must be threads or prefork"),
    ("INNGEST_DB_PREPARED_STATEMENTS", "sometimes", "INNGEST_DB_PREPARED_STATEMENTS must be a boolean"),
])
def test_bad_configuration_stops_the_server_with_a_clear_error(variable: str, value: str, message: str) -> None:
    done = manage({**PRODUCTION, variable: value}, "check")
    assert done.returncode != 0
    assert message in done.stderr


OPEN = {key: value for key, value in PRODUCTION.items()
        if key not in ("INNGEST_SIGNING_KEY", "DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS")}


def test_an_open_production_fails_the_system_checks_that_every_command_runs() -> None:
    done = manage(OPEN, "check")
    assert done.returncode != 0
    for code, what in (("E001", "INNGEST_SIGNING_KEY"), ("E002", "DJANGO_SECRET_KEY"), ("E003", "DJANGO_ALLOWED_HOSTS")):
        assert f"(inngest.{code}) {what}" in done.stderr
    assert "INNGEST_INSECURE=1" in done.stderr
    # `migrate` (the Docker image's first command) runs the same checks and stops before touching the database.
    assert "inngest.E001" in manage(OPEN, "migrate", "--plan").stderr


def test_insecure_is_allowed_and_said_loudly() -> None:
    done = manage({**OPEN, "INNGEST_INSECURE": "1"}, "check")
    assert done.returncode == 0, done.stderr
    assert "(inngest.W001) INSECURE (INNGEST_INSECURE is set): INNGEST_SIGNING_KEY" in done.stderr


@pytest.mark.parametrize("command", [
    [sys.executable, "-m", "gunicorn", "inngest_project.wsgi", "--bind", "127.0.0.1:0", "--workers", "1"],
    [sys.executable, "-m", "gunicorn", "inngest_project.asgi:application", "--bind", "127.0.0.1:0", "--workers", "1",
     "--worker-class", "uvicorn_worker.UvicornWorker"],
    [sys.executable, "-m", "celery", "-A", "inngest_project", "worker", "-Q", "inngest", "-c", "1"],
    [sys.executable, "-m", "celery", "-A", "inngest_project", "beat", "--pidfile", ""],
], ids=["gunicorn", "gunicorn asgi", "celery worker", "celery beat"])
def test_the_processes_that_run_no_system_checks_refuse_an_open_production_too(command: list[str]) -> None:
    done = subprocess.run(command, cwd=ROOT, env=OPEN, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "production is not secure: INNGEST_SIGNING_KEY" in done.stdout + done.stderr
