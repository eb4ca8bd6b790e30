"""What `manage.py dev` prints, as a user sees it in the terminal: a banner with the UI's URL and
the INNGEST_DEV line, one line per app sync and per run started and ended (with the run's link),
nothing else while idle, and a clean exit on Ctrl-C. Missed cron ticks are not caught up."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from functions.schedules import TASK_NAME, skip_missed_cron_ticks, sync_cron_schedules
from tests.factories import make_function
from tests.sdk_app import SdkApp, free_port
from tests.stacks import MANAGE, ROOT, TEST_ENV, wait_for, wait_http


class Terminal:
    """The dev server's stdout and stderr, read as it prints them."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.process, self.lines = process, []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.mark.e2e
def test_the_dev_terminal_says_what_happens_and_nothing_else(tmp_path: Path) -> None:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    app = SdkApp("terminal-dev", base_url)
    env = {**os.environ, **TEST_ENV, "INNGEST_DEV_DATA_DIR": str(tmp_path), "INNGEST_SYNC_POLL_SECONDS": "1"}
    for name in ("DATABASE_URL", "REDIS_URL", "INNGEST_LOG_LEVEL"):
        env.pop(name, None)  # the terminal as a user gets it: default log level
    process = subprocess.Popen([sys.executable, MANAGE, "dev", "--port", str(port), "--urls", app.url], env=env, cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    terminal = Terminal(process)
    try:
        wait_http(f"{base_url}/health")
        wait_for(lambda: "app terminal-dev synced" in terminal.text, timeout=30, what="the sync line")
        assert f"UI          {base_url}/" in terminal.text and f"INNGEST_DEV={base_url}" in terminal.text
        idle_from = len(terminal.lines)
        time.sleep(4)  # idle, with the app re-synced every second and the timers ticking
        assert terminal.lines[idle_from:] == []

        answer = requests.post(f"{base_url}/e/key", json={"name": "test/three-steps", "data": {"start": 1}}, timeout=10)
        assert answer.status_code == 200
        wait_for(lambda: "completed in" in terminal.text, timeout=30, what="the run's completed line")
        started = next(line for line in terminal.lines if " started" in line)
        run_id = started.split("run ", 1)[1].split(" ", 1)[0]
        assert started.endswith(f"{base_url}/runs/{run_id}")
        assert f"run {run_id} of terminal-dev-three-steps completed in" in terminal.text

        requests.post(f"{base_url}/e/key", json={"name": "test/always-fails", "data": {"tag": "t"}}, timeout=10)
        wait_for(lambda: "failed" in terminal.text and "ValueError: boom t" in terminal.text, timeout=30, what="the failed line")
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=30)
        app.stop()
    assert code == 0
    assert terminal.lines[-1] == "Stopped."
    for noise in ("Traceback", "INFO", "No hostname was supplied", "KeyboardInterrupt"):
        assert noise not in terminal.text, terminal.text
    assert len(terminal.lines) < 25, terminal.text


@pytest.mark.django_db
def test_cron_ticks_missed_while_the_server_was_down_are_not_caught_up() -> None:
    function = make_function()
    function.triggers.update(event_name="", cron="* * * * *")
    sync_cron_schedules(function)
    PeriodicTask.objects.filter(task=TASK_NAME).update(last_run_at=timezone.now() - timedelta(hours=3))
    assert skip_missed_cron_ticks() == 1
    task = PeriodicTask.objects.get(task=TASK_NAME)
    assert timezone.now() - task.last_run_at < timedelta(seconds=5)
    is_due, _ = task.schedule.is_due(task.last_run_at)
    assert not is_due  # beat's first look: nothing overdue, the next tick is the next minute's
