"""Durable Endpoints written with the official `inngest` v4 npm package (tests/js/endpoints.mjs),
run with Node inside the test run."""
from __future__ import annotations

import subprocess

from tests.js_app import JS_DIR
from tests.sdk_app import free_port
from tests.stacks import stop_process, wait_http


class EndpointApp:
    def __init__(self, server_url: str, app_id: str) -> None:
        self.app_id = app_id
        self.port = free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(["node", "endpoints.mjs", str(self.port), server_url, app_id], cwd=JS_DIR,
                                        start_new_session=True)
        wait_http(f"{self.origin}/ready", timeout=30)

    def stop(self) -> None:
        stop_process(self.process)
