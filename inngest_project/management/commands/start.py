"""`python manage.py start`: the production stack on one machine, as child processes.

gunicorn (HTTP, ASGI workers: inngest_project/asgi.py), celery workers for calls, one celery worker for timers (its own queue, so calls
to hanging apps never hold up sleeps, retries and the sweeper) and celery beat, against
PostgreSQL and Redis. Stopping this
command (SIGINT/SIGTERM) stops them all; if one of them dies, the others are stopped too.
Settings come from a YAML file (--config), then environment variables, then flags: each
overrides the one before.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

# Config file keys and the environment variables they stand for.
CONFIG_KEYS = {
    "port": "INNGEST_PORT", "host": "INNGEST_HOST", "database_url": "DATABASE_URL", "redis_url": "REDIS_URL",
    "workers": "INNGEST_WORKERS", "concurrency": "INNGEST_WORKER_CONCURRENCY", "http_workers": "INNGEST_HTTP_WORKERS",
    "signing_key": "INNGEST_SIGNING_KEY", "signing_key_fallback": "INNGEST_SIGNING_KEY_FALLBACK",
    "require_event_keys": "INNGEST_REQUIRE_EVENT_KEYS", "operator_login": "INNGEST_OPERATOR_LOGIN",
    "https": "INNGEST_HTTPS", "secret_key": "DJANGO_SECRET_KEY", "allowed_hosts": "DJANGO_ALLOWED_HOSTS",
    "retry_interval": "INNGEST_RETRY_INTERVAL", "lease_seconds": "INNGEST_LEASE_SECONDS",
    "time_slice_seconds": "INNGEST_TIME_SLICE_SECONDS", "max_call_body_bytes": "INNGEST_MAX_CALL_BODY_BYTES",
    "run_retention_days": "INNGEST_RUN_RETENTION_DAYS", "log_level": "INNGEST_LOG_LEVEL", "log_format": "INNGEST_LOG_FORMAT",
    "call_timeout_seconds": "INNGEST_CALL_TIMEOUT_SECONDS", "sweep_seconds": "INNGEST_SWEEP_SECONDS",
    "max_event_bytes": "INNGEST_MAX_EVENT_BYTES", "max_events_per_request": "INNGEST_MAX_EVENTS_PER_REQUEST",
    "hsts_seconds": "INNGEST_HSTS_SECONDS", "event_key": "INNGEST_EVENT_KEY", "insecure": "INNGEST_INSECURE",
    "timer_concurrency": "INNGEST_TIMER_CONCURRENCY", "http_threads": "INNGEST_HTTP_THREADS", "worker_pool": "INNGEST_WORKER_POOL",
    "max_batch_size": "INNGEST_MAX_BATCH_SIZE", "unconfirmed_token_seconds": "INNGEST_UNCONFIRMED_TOKEN_SECONDS",
}
# `inngest start`'s own spellings of the keys both servers share, so its config file carries over.
INNGEST_CONFIG_KEYS = {"signing-key": "signing_key", "event-key": "event_key", "postgres-uri": "database_url",
                       "redis-uri": "redis_url", "retry-interval": "retry_interval"}
DEFAULTS = {"INNGEST_PORT": "8288", "INNGEST_HOST": "0.0.0.0", "INNGEST_WORKERS": "1",
            "INNGEST_WORKER_CONCURRENCY": "8", "INNGEST_HTTP_WORKERS": "2", "INNGEST_TIMER_CONCURRENCY": "2"}


class Command(BaseCommand):
    help = "Run gunicorn, celery workers (calls and timers) and celery beat together (production mode on one machine)."
    requires_system_checks: list = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--config", help="YAML file of settings (keys: %s)" % ", ".join(CONFIG_KEYS))
        parser.add_argument("--port", type=int)
        parser.add_argument("--host")
        parser.add_argument("--database-url", "--postgres-uri", dest="database_url")
        parser.add_argument("--redis-url", "--redis-uri", dest="redis_url")
        parser.add_argument("--signing-key", help="signs calls to apps and guards the APIs (INNGEST_SIGNING_KEY)")
        parser.add_argument("--event-key", action="append", dest="event_keys",
                            help="an event key apps send events with (repeatable, or comma-separated; INNGEST_EVENT_KEY)")
        parser.add_argument("--retry-interval", type=float, help="seconds of linear retry backoff (INNGEST_RETRY_INTERVAL)")
        parser.add_argument("--insecure", action="store_true",
                            help="run open without a signing key, secret key or allowed hosts (INNGEST_INSECURE)")
        parser.add_argument("--workers", type=int, help="celery worker processes for calls (the timer worker is extra)")
        parser.add_argument("--concurrency", type=int, help="pool size of each celery worker for calls")
        parser.add_argument("--timer-concurrency", type=int, help="pool size of the timer worker")
        parser.add_argument("--http-workers", type=int, help="gunicorn worker processes")

    def handle(self, *args: Any, **options: Any) -> None:
        env = build_environment(options)
        if not env.get("DATABASE_URL") or not env.get("REDIS_URL"):
            raise CommandError("production mode needs a database and a broker: set --database-url and --redis-url "
                               "(or DATABASE_URL and REDIS_URL, or database_url and redis_url in --config)")
        manage = [sys.executable, str(Path(__file__).resolve().parents[3] / "manage.py")]
        warnings = check_configuration(manage, env)
        if warnings:
            self.stderr.write(warnings)  # Django's deploy warnings, and INNGEST_INSECURE's, loudly at start
        subprocess.run([*manage, "migrate", "--noinput", "-v", "0", "--skip-checks"], env=env, check=True)
        children = [subprocess.Popen(cmd, env=env) for cmd in child_commands(env)]
        self.stdout.write(f"serving on http://{env['INNGEST_HOST']}:{env['INNGEST_PORT']} ({len(children)} processes)")
        supervise(children)


def check_configuration(manage: list[str], env: dict[str, str]) -> str:
    """Load the settings as the children will, once, with Django's deploy checks and ours (an open
    production is an error: inngest_project/security.py); stop with the problems, or return the warnings."""
    done = subprocess.run([*manage, "check", "--deploy", "--fail-level", "ERROR"], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise CommandError(_check_failure(done.stderr))
    return done.stderr.strip()


def _check_failure(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    if "ERRORS:" in lines:
        # A SystemCheckError: the errors, with their hints, up to the warnings.
        errors = lines[lines.index("ERRORS:") + 1:]
        errors = errors[:errors.index("WARNINGS:")] if "WARNINGS:" in errors else errors[:-1]
        return "refusing to start:\n" + "\n".join(line.strip().removeprefix("?: ") for line in errors)
    reason = lines[-1].split("ImproperlyConfigured: ", 1)[-1] if lines else "manage.py check failed"
    return f"invalid configuration: {reason}"


def build_environment(options: dict[str, Any]) -> dict[str, str]:
    env = dict(DEFAULTS)
    if options.get("config"):
        env.update(read_config_file(options["config"]))
    env.update({k: v for k, v in os.environ.items()})
    flags = {"port": "INNGEST_PORT", "host": "INNGEST_HOST", "database_url": "DATABASE_URL", "redis_url": "REDIS_URL",
             "workers": "INNGEST_WORKERS", "concurrency": "INNGEST_WORKER_CONCURRENCY", "http_workers": "INNGEST_HTTP_WORKERS",
             "signing_key": "INNGEST_SIGNING_KEY", "retry_interval": "INNGEST_RETRY_INTERVAL",
             "timer_concurrency": "INNGEST_TIMER_CONCURRENCY"}
    env.update({name: str(options[flag]) for flag, name in flags.items() if options.get(flag) is not None})
    if options.get("event_keys"):
        env["INNGEST_EVENT_KEY"] = ",".join(options["event_keys"])
    if options.get("insecure"):
        env["INNGEST_INSECURE"] = "true"
    # `inngest start`'s names, when ours are not given.
    for ours, theirs in (("DATABASE_URL", "INNGEST_POSTGRES_URI"), ("REDIS_URL", "INNGEST_REDIS_URI")):
        if not env.get(ours) and env.get(theirs):
            env[ours] = env[theirs]
    return env


def read_config_file(path: str) -> dict[str, str]:
    try:
        loaded = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise CommandError(f"cannot read config file {path}: {exc}") from None
    if not isinstance(loaded, dict):
        raise CommandError(f"config file {path} must be a mapping of settings")
    loaded = {INNGEST_CONFIG_KEYS.get(key, key): value for key, value in loaded.items()}
    unknown = sorted(set(loaded) - set(CONFIG_KEYS))
    if unknown:
        raise CommandError(f"config file {path}: unknown keys {', '.join(unknown)} (known: {', '.join(CONFIG_KEYS)})")
    return {CONFIG_KEYS[key]: _config_value(value) for key, value in loaded.items()}


def _config_value(value: Any) -> str:
    """A list (several event keys) becomes comma-separated, as the environment variable takes it."""
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    return str(value)


def child_commands(env: dict[str, str]) -> list[list[str]]:
    python = sys.executable
    commands = [[
        python, "-m", "gunicorn", "inngest_project.asgi:application", "--bind", f"{env['INNGEST_HOST']}:{env['INNGEST_PORT']}",
        "--workers", env["INNGEST_HTTP_WORKERS"], "--worker-class", "uvicorn_worker.UvicornWorker",
        # Realtime subscriptions never finish by themselves: a stopping worker gives them this long.
        "--timeout", "120", "--graceful-timeout", "10", "--log-level", "warning",
    ]]
    celery = [python, "-m", "celery", "-A", "inngest_project"]
    for index in range(int(env["INNGEST_WORKERS"])):
        commands.append([*celery, "worker", "-Q", settings.CELERY_TASK_DEFAULT_QUEUE,
                         "-c", env["INNGEST_WORKER_CONCURRENCY"], "-n", f"worker{index}@%h", "--loglevel", "WARNING"])
    # Always one, also with --workers 0 (call workers run elsewhere): beat's ticks need it.
    commands.append([*celery, "worker", "-Q", settings.INNGEST_TIMER_QUEUE,
                     "-c", env["INNGEST_TIMER_CONCURRENCY"], "-n", "timers@%h", "--loglevel", "WARNING"])
    commands.append([*celery, "beat", "--loglevel", "WARNING", "--pidfile", ""])
    return commands


def supervise(children: list[subprocess.Popen]) -> None:
    stopping = False

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while not stopping and all(child.poll() is None for child in children):
        time.sleep(0.2)
    for child in children:
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + 15
    for child in children:
        try:
            child.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            child.kill()
    if not stopping:
        raise CommandError("a child process exited; the stack was stopped")
