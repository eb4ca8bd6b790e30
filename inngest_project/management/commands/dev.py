"""`python manage.py dev`: the whole server in one process, zero setup, like `inngest dev`.

SQLite (unless DATABASE_URL is set), migrations applied at start, a Celery worker on the
in-memory transport and celery beat (cron triggers) running in this process, the timer loop
that wakes sleeps, waits and due calls, and app polling for the URLs given with --urls.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Any, Callable

from celery.beat import EmbeddedService
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections

from executor import timers
from functions.schedules import skip_missed_cron_ticks
from functions.sync_request import request_sync, sync_known_apps
from inngest_project.celery import app as celery_app
from inngest_project.dev_terminal import banner, quiet_logging

log = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Run the dev server: HTTP API, in-process worker and timers, on port 8288 by default."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", "-p", type=int, default=8288)
        parser.add_argument("--urls", "-u", "--sdk-url", action="append", default=[], dest="urls",
                            help="An app's serve URL to sync at start and poll (repeatable).")
        parser.add_argument("--no-poll", action="store_true", help="Do not re-sync apps every poll interval.")
        parser.add_argument("--workers", type=int, default=8, help="Threads of the in-process worker.")

    def execute(self, *args: Any, **options: Any) -> str | None:
        # Before the system checks: dev mode is open on purpose, even on a DATABASE_URL
        # (inngest_project/security.py), and only this process says so.
        settings.INNGEST_DEV_MODE = True
        return super().execute(*args, **options)

    def handle(self, *args: Any, **options: Any) -> None:
        base_url = f"http://{_reachable(options['host'])}:{options['port']}"
        quiet_logging(base_url)
        try:
            self.serve(base_url, **options)  # uvicorn returns once Ctrl-C has stopped it
        except KeyboardInterrupt:
            pass
        # Threads (worker, beat, timers) stop with the process; what they had in flight is
        # rows with due times, picked up again at the next start.
        self.stdout.write("\nStopped.")
        self.stdout.flush()
        os._exit(0)

    def serve(self, base_url: str, **options: Any) -> None:
        urls = [_with_scheme(url) for url in options["urls"]]
        settings.INNGEST_DEV_URLS = urls
        if "INNGEST_OPERATOR_LOGIN" not in os.environ:
            settings.INNGEST_OPERATOR_LOGIN = False  # the dev server's UI is open, as Inngest's is
        call_command("migrate", interactive=False, verbosity=0)
        start_in_process_worker(options["workers"])
        # Inngest does not catch up cron ticks missed while the server was down; beat would fire
        # the last missed one at once.
        skip_missed_cron_ticks()
        # Cron triggers are django-celery-beat periodic tasks, as in production: beat runs here too.
        EmbeddedService(celery_app, thread=True, scheduler_cls=settings.CELERY_BEAT_SCHEDULER).start()
        _start_loop("timer-loop", settings.INNGEST_SWEEP_SECONDS, timers.tick_timers)
        _start_sync(urls, poll=not options["no_poll"], address=(options["host"], options["port"]))
        self.stdout.write(banner(base_url, str(settings.DATABASES["default"]["NAME"]), urls, poll=not options["no_poll"]))
        self.stdout.flush()
        serve_http(options["host"], options["port"])


def serve_http(host: str, port: int) -> None:
    """The same ASGI application as production (inngest_project/asgi.py), so realtime's server-sent
    events and WebSockets work here too; its bus is in-process (no Redis needed)."""
    import uvicorn

    from inngest_project.asgi import application

    config = uvicorn.Config(application, host=host, port=port, lifespan="on", log_level="warning",
                            access_log=False, ws="auto", timeout_graceful_shutdown=3)
    uvicorn.Server(config).run()


def start_in_process_worker(concurrency: int) -> None:
    """A Celery worker in a thread of this process, consuming the in-memory transport."""
    if not settings.REDIS_URL:
        celery_app.conf.broker_url = "memory://localhost/"  # a host named: kombu warns without one
        # The in-memory transport polls its queues; its default of once a second would show
        # up directly as latency between an event and the first call.
        celery_app.conf.broker_transport_options = {"polling_interval": 0.01}
    # One worker for both queues: dev mode's timers do not depend on it (the timer loop below
    # ticks in a thread of its own); only the early-wake nudges and cron ticks come through here.
    queues = [settings.CELERY_TASK_DEFAULT_QUEUE, settings.INNGEST_TIMER_QUEUE]
    worker = celery_app.WorkController(pool_cls="threads", concurrency=concurrency, queues=queues, loglevel="WARNING",
                                       without_heartbeat=True, without_mingle=True, without_gossip=True)
    threading.Thread(target=worker.start, name="celery-worker", daemon=True).start()


def _start_sync(urls: list[str], poll: bool, address: tuple[str, int]) -> None:
    first = True

    def sync_once() -> None:
        nonlocal first
        if first:
            first = False
            _wait_until_listening(address)  # the SDK answers a sync by calling us
        if poll:
            sync_known_apps(urls)
        else:
            for url in urls:
                request_sync(url)

    if poll:
        _start_loop("app-sync", settings.INNGEST_SYNC_POLL_SECONDS, sync_once, run_first=True)
    else:
        threading.Thread(target=_guarded(sync_once), name="app-sync", daemon=True).start()


def _start_loop(name: str, interval: float, body: Callable[[], Any], run_first: bool = False) -> None:
    guarded = _guarded(body)

    def loop() -> None:
        if run_first:
            guarded()
        while True:
            time.sleep(interval)
            guarded()

    threading.Thread(target=loop, name=name, daemon=True).start()


def _wait_until_listening(address: tuple[str, int], timeout: float = 30.0) -> None:
    host = "127.0.0.1" if address[0] in ("0.0.0.0", "") else address[0]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, address[1]), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)


def _guarded(body: Callable[[], Any]) -> Callable[[], None]:
    def call() -> None:
        try:
            body()
        except Exception:  # noqa: BLE001 - a failed tick is logged and the next one tries again
            log.exception("background task %s failed", getattr(body, "__name__", body))
        finally:
            close_old_connections()

    return call


def _reachable(host: str) -> str:
    """The host to put in links: a server bound to every interface is reached at 127.0.0.1."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def _with_scheme(url: str) -> str:
    return url if "://" in url else f"http://{url}"
