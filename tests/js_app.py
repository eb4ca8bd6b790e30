"""An Express app written with the official `inngest` npm package (tests/js/app.mjs), run with Node
inside the test run, in either major version of the package (v3 or v4)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import requests

from tests.sdk_app import free_port
from tests.stacks import stop_process, wait_http

JS_DIR = Path(__file__).resolve().parent / "js"


class JsApp:
    def __init__(self, major: str, server_url: str, app_id: str, mode: str = "", script: str = "app.mjs") -> None:
        self.major, self.app_id = major, app_id
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/api/inngest"
        self.process = subprocess.Popen(
            ["node", script, major, str(self.port), server_url, app_id, mode], cwd=JS_DIR, start_new_session=True,
        )
        wait_http(f"http://127.0.0.1:{self.port}/seen", timeout=30)

    def event(self, name: str) -> str:
        """The app's events carry its id, so several apps can share one server."""
        return f"{self.app_id}/{name}"

    def sync(self) -> None:
        answer = requests.put(self.url, timeout=10)
        assert answer.status_code == 200, answer.text

    def seen(self) -> dict:
        return requests.get(f"http://127.0.0.1:{self.port}/seen", timeout=5).json()

    def stop(self) -> None:
        stop_process(self.process)
