"""The operator UI in a real headless browser (Debian's chromium driven by Playwright), in both
modes, on data made by real runs. Screenshots go to artifacts/screenshots/."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Iterator

import pytest
import requests

from tests.stacks import MANAGE, ROOT, ProductionStack, wait_for

pytestmark = pytest.mark.e2e

SCREENSHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"
PASSWORD = "operator-password"


@pytest.fixture(scope="session")
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"chromium is not installed at {CHROMIUM} (.ci/run installs Debian's chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser, stack, request: pytest.FixtureRequest) -> Iterator:
    server, _ = stack
    context = browser.new_context(base_url=server.base_url, viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(15_000)
    if isinstance(server, ProductionStack):
        sign_in(page, server)
    yield page
    context.close()


def sign_in(page, server: ProductionStack) -> None:
    ensure_operator(server)
    page.goto("/login/")
    page.fill("input[name=username]", "operator")
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(re.compile(r".*/runs/$"))


def ensure_operator(server: ProductionStack) -> None:
    if server.query("SELECT count(*) FROM auth_user WHERE username = 'operator'", [])[0][0]:
        return
    env = {**server.env, "DJANGO_SUPERUSER_PASSWORD": PASSWORD}
    subprocess.run([sys.executable, MANAGE, "createsuperuser", "--noinput", "--username", "operator", "--email", "op@example.com"],
                   env=env, cwd=ROOT, check=True, capture_output=True)


def shot(page, name: str, mode: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{mode}-{name}.png"), full_page=True)


def mode_of(server) -> str:
    return "production" if isinstance(server, ProductionStack) else "dev"


def test_production_pages_need_a_signed_in_user(browser, production_stack) -> None:
    server, _ = production_stack
    context = browser.new_context(base_url=server.base_url)
    anonymous = context.new_page()
    for path in ("/runs/", "/apps/", "/events/", "/functions/"):
        anonymous.goto(path)
        assert "/login/" in anonymous.url
    shot(anonymous, "login", "production")
    context.close()


def test_every_page_renders_with_data_from_real_runs(page, stack) -> None:
    server, app = stack
    mode = mode_of(server)
    ok = server.run_once({"name": "test/three-steps", "data": {"start": 1}})
    failed = server.run_once({"name": "test/always-fails", "data": {"tag": "ui"}})

    page.goto("/apps/")
    assert page.locator("td", has_text=app.app_id).count() == 1
    shot(page, "apps", mode)

    page.goto("/functions/")
    page.click(f"a[href='/functions/{app.app_id}-three-steps']")
    assert page.locator("h2", has_text="Recent runs").is_visible()
    assert page.locator(f"a:has-text('{ok['run_id']}')").count() == 1
    shot(page, "function", mode)

    page.goto(f"/runs/{ok['run_id']}")
    assert page.locator("#run-status").inner_text() == "Completed"
    timeline = page.locator("#timeline li")
    assert timeline.count() == 4  # three steps and the final call
    assert '"result"' in page.locator("#output").inner_text()
    shot(page, "run-completed", mode)

    page.goto(f"/runs/{failed['run_id']}")
    assert page.locator("#run-status").inner_text() == "Failed"
    assert "boom ui" in page.locator("#timeline").inner_text()
    page.click("#timeline summary:has-text('stack')")
    assert "ValueError" in page.locator("#timeline pre").first.inner_text()
    shot(page, "run-failed", mode)

    page.goto("/events/")
    page.click(f"a:has-text('{ok['event_id']}')")
    assert '"start": 1' in page.locator("#payload").inner_text()
    assert page.locator(f"a:has-text('{ok['run_id']}')").count() == 1
    shot(page, "event", mode)


def test_runs_can_be_filtered_by_status_function_and_event_name(page, stack) -> None:
    server, app = stack
    tag = uuid.uuid4().hex[:8]
    failed = server.run_once({"name": "test/always-fails", "data": {"tag": tag}})
    ok = server.run_once({"name": "test/three-steps", "data": {"start": 2}})
    page.goto("/runs/")
    page.select_option("select[name=status]", "failed")
    page.click("#run-filter button")
    assert "status=failed" in page.url
    # The URL changes when the answer starts; all_inner_texts() does not wait for the table.
    page.locator("table.runs .status").first.wait_for()
    statuses = page.locator("table.runs .status").all_inner_texts()
    assert statuses and set(statuses) == {"Failed"}
    assert page.locator(f"a:has-text('{failed['run_id']}')").count() == 1
    shot(page, "runs-failed", mode_of(server))

    page.goto("/runs/")
    page.select_option("select[name=function]", f"{app.app_id}-three-steps")
    page.fill("input[name=event_name]", "test/three-steps")
    page.click("#run-filter button")
    assert page.locator(f"a:has-text('{ok['run_id']}')").count() == 1
    assert page.locator(f"a:has-text('{failed['run_id']}')").count() == 0


def test_cancel_and_rerun_from_the_run_page(page, stack) -> None:
    server, app = stack
    (internal_id,) = server.send({"name": "test/cancellable", "data": {"order": uuid.uuid4().hex, "seconds": 30}})
    (run,) = server.wait_for_runs(internal_id)
    wait_for(lambda: server.query("SELECT count(*) FROM runs_wait WHERE run_id = %s AND kind = 'sleep'", [run["run_id"]])[0][0],
             what="the run to sleep")
    page.goto(f"/runs/{run['run_id']}")
    assert "sleeping until" in page.locator("#timeline").inner_text()
    page.click("#cancel")
    assert page.locator("#run-status").inner_text() == "Cancelled"
    assert server.wait_for_end(run["run_id"])["status"] == "Cancelled"
    shot(page, "run-cancelled", mode_of(server))

    page.click("#rerun")
    page.wait_for_url(re.compile(r".*/runs/(?!%s)[0-9A-Z]{26}$" % run["run_id"]))
    new_run_id = page.url.rsplit("/", 1)[1]
    assert new_run_id != run["run_id"]
    wait_for(lambda: server.query("SELECT count(*) FROM runs_wait WHERE run_id = %s AND kind = 'sleep'", [new_run_id])[0][0],
             what="the rerun to reach its sleep")  # it ran from the first step again
    assert requests.delete(f"{server.base_url}/v1/runs/{new_run_id}", timeout=10).status_code == 200


def test_a_test_event_sent_from_the_function_page_starts_a_run(page, stack) -> None:
    server, app = stack
    page.goto(f"/functions/{app.app_id}-three-steps")
    page.fill("#send-event textarea[name=data]", '{"start": 41}')
    page.click("#send-event button")
    page.wait_for_url(re.compile(r".*/events/[0-9A-Z]{26}$"))
    wait_for(lambda: (page.reload() or True) and page.locator("a.mono").count() > 0, what="the run to show up")
    run_id = page.locator("a.mono").first.inner_text()
    assert server.wait_for_end(run_id)["output"]["result"]["one"] == 42


def test_the_event_stream_updates_without_a_reload(page, stack) -> None:
    server, app = stack
    page.goto("/events/")
    name = f"test/stream-{uuid.uuid4().hex[:8]}"
    (internal_id,) = server.send({"name": name, "data": {}})
    page.wait_for_selector(f"text={internal_id}", timeout=10_000)  # the htmx poll brought it in
    shot(page, "events-live", mode_of(server))
