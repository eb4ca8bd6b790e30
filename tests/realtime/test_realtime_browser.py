"""The realtime example (tests/js/realtime_app.mjs, the official `inngest` v4 package): a function
publishes an order's progress, and a page in a real browser (Debian's chromium driven by
Playwright) shows each update as it is published, over a WebSocket and over server-sent events;
a Node subscriber (the SDK's own subscribe()) hears the same. Both modes."""
from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Iterator

import pytest
import requests

from tests.sdk_app import free_port
from tests.stacks import ROOT, ProductionStack, stop_process, wait_for, wait_http

pytestmark = pytest.mark.e2e

JS_DIR = ROOT / "tests" / "js"
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"chromium is not installed at {CHROMIUM} (.ci/run installs Debian's chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def realtime_app(stack) -> Iterator[tuple]:
    server, _ = stack
    port, app_id = free_port(), f"rt-{uuid.uuid4().hex[:8]}"
    process = subprocess.Popen(["node", "--experimental-websocket", "realtime_app.mjs", str(port), server.base_url, app_id],
                               cwd=JS_DIR, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/heard?order=none", timeout=30)
        answer = requests.put(f"{url}/api/inngest", timeout=15)
        assert answer.status_code == 200, answer.text
        yield server, url, app_id
    finally:
        stop_process(process)


def test_a_browser_receives_a_functions_updates_live(browser, realtime_app) -> None:
    server, app_url, app_id = realtime_app
    order = uuid.uuid4().hex[:8]
    assert requests.post(f"{app_url}/listen", params={"order": order}, timeout=15).json() == {"listening": True}
    page = browser.new_page()
    page.set_default_timeout(20_000)
    try:
        page.goto(f"{app_url}/order?order={order}")
        page.wait_for_selector("#state:has-text('live')")
        (event_id,) = server.send({"name": f"{app_id}/order.placed", "data": {"orderId": order}})
        for transport in ("ws", "sse"):
            page.wait_for_selector(f"#{transport} li.done")
            statuses = page.eval_on_selector_all(f"#{transport} li.status", "items => items.map(i => i.textContent)")
            assert [text.split('"status":"')[1].split('"')[0] for text in statuses] == ["paid", "packed", "shipped"]
            assert_arrived_live(page, transport)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        mode = "production" if isinstance(server, ProductionStack) else "dev"
        page.screenshot(path=str(SCREENSHOTS / f"{mode}-realtime.png"), full_page=True)
    finally:
        page.close()
    heard = wait_for(lambda: len(got := requests.get(f"{app_url}/heard", params={"order": order}, timeout=5).json()) >= 4 and got,
                     what="the Node subscriber's messages")
    # The client's publish is outside any step, so like all such code it may run on more than one
    # call of the function; the steps' publishes are memoized and arrive exactly once.
    assert [m["topic"] for m in heard[:3]] == ["status", "status", "status"]
    assert {m["topic"] for m in heard[3:]} == {"done"} and heard[-1]["data"] == {"delivered": True}
    (run,) = server.wait_for_runs(event_id)
    assert all(m["runId"] == run["run_id"] for m in heard[:3])  # published from the run's steps


def assert_arrived_live(page, transport: str) -> None:
    """Each update reached the page within moments of its publish, one by one as the function ran
    (its steps take 200 ms each), not all at once when the run ended."""
    arrivals = page.eval_on_selector_all(
        f"#{transport} li.status",
        "items => items.map(i => [Number(i.dataset.receivedAt), JSON.parse(i.textContent.slice(8)).at])")
    for received_at, published_at in arrivals:
        assert received_at - published_at < 2000, arrivals
    gaps = [later[0] - earlier[0] for earlier, later in zip(arrivals, arrivals[1:])]
    assert all(gap >= 150 for gap in gaps), gaps
