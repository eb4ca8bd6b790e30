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
    context = browser.new_context(base_url=server.base_url, viewport={"width": 1280, "height": 900})
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


WIDTHS = (1280, 390)


def shot_at_widths(page, name: str, mode: str) -> None:
    """A screenshot at each width; at 390 px nothing may make the page wider than the screen."""
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_timeout(50)
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= width, f"{name} is {scroll_width} px wide at {width} px"
        shot(page, f"{name}-{width}", mode)
    page.set_viewport_size({"width": 1280, "height": 900})


def test_every_page_renders_with_data_from_real_runs(page, stack) -> None:
    server, app = stack
    mode = mode_of(server)
    ok = server.run_once({"name": "test/three-steps", "data": {"start": 1}})
    failed = server.run_once({"name": "test/always-fails", "data": {"tag": "ui"}})

    if mode == "dev":  # an app whose long URL failed to sync with a long error: both wrap
        long_url = "http://very-long-host-name-of-an-app.internal.example.com:8000/" + "path/" * 30 + "api/inngest"
        server.query("INSERT INTO functions_app (id, name, url, sdk_language, sdk_version, framework, app_version, checksum, "
                     "error, created_at) VALUES (%s, %s, %s, '', '', '', '', '', %s, '2026-01-01 00:00:00')",
                     [uuid.uuid4().hex, long_url, long_url, "HTTP 502 from app (text/html, 1.2 KB): " + "upstream-failure-" * 20])
    page.goto("/apps/")
    assert page.locator("td", has_text=app.app_id).count() == 1
    shot_at_widths(page, "apps", mode)

    page.goto("/functions/")
    shot_at_widths(page, "functions", mode)
    page.click(f"a[href='/functions/{app.app_id}-three-steps']")
    page.locator("h2", has_text="Recent runs").wait_for()
    assert page.locator(f"a:has-text('{ok['run_id']}')").count() == 1
    shot_at_widths(page, "function", mode)

    page.goto(f"/runs/{ok['run_id']}")
    assert page.locator("#run-status").inner_text() == "Completed"
    calls = page.locator("#timeline li.call")
    assert calls.count() == 4  # three steps and the final call
    assert [calls.nth(i).locator("strong").inner_text() for i in range(3)] == ["one", "two", "three"]  # as the user named them
    assert re.search(r"\d+(\.\d)? (ms|s)$", page.locator("#total-duration").inner_text())
    assert '"result"' in page.locator("#output").inner_text()
    shot_at_widths(page, "run-completed", mode)

    page.goto(f"/runs/{failed['run_id']}")
    assert page.locator("#run-status").inner_text() == "Failed"
    assert "boom ui" in page.locator("#run-error .message").inner_text()
    stack = page.locator("#run-error pre.stack").inner_text()
    assert "ValueError" in stack and "\n" in stack and "\\n" not in stack  # line breaks, not escapes
    shot_at_widths(page, "run-failed", mode)

    page.goto("/runs/")
    shot_at_widths(page, "runs", mode)

    page.goto("/events/")
    shot_at_widths(page, "events", mode)
    page.click(f"a:has-text('{ok['event_id']}')")
    assert '"start": 1' in page.locator("#payload").inner_text()
    assert page.locator(f"a:has-text('{ok['run_id']}')").count() == 1
    shot_at_widths(page, "event", mode)

    page.goto("/events/send")
    shot_at_widths(page, "send-event", mode)


def test_pages_follow_the_dark_color_scheme(browser, dev_stack) -> None:
    server, _ = dev_stack
    context = browser.new_context(base_url=server.base_url, viewport={"width": 1280, "height": 900}, color_scheme="dark")
    dark = context.new_page()
    dark.goto("/runs/")
    background = dark.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(17, 21, 30)", background
    shot(dark, "runs-dark-1280", "dev")
    context.close()


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
    assert "Cancelled by the UI" in page.locator("#cancelled-by").inner_text()
    assert "cancelled by the UI" in page.locator("#timeline li.end").inner_text()
    assert server.wait_for_end(run["run_id"])["status"] == "Cancelled"
    shot_at_widths(page, "run-cancelled", mode_of(server))

    page.click("#rerun")
    page.wait_for_url(re.compile(r".*/runs/(?!%s)[0-9A-Z]{26}$" % run["run_id"]))
    new_run_id = page.url.rsplit("/", 1)[1]
    assert new_run_id != run["run_id"]
    assert run["run_id"] in page.locator("#rerun-of").inner_text()
    wait_for(lambda: server.query("SELECT count(*) FROM runs_wait WHERE run_id = %s AND kind = 'sleep'", [new_run_id])[0][0],
             what="the rerun to reach its sleep")  # it ran from the first step again
    assert requests.delete(f"{server.base_url}/v1/runs/{new_run_id}", headers=server.headers, timeout=10).status_code == 200
    page.wait_for_function("document.getElementById('run-status').innerText === 'Cancelled'")  # live, no reload
    assert "the REST API" in page.locator("#cancelled-by").inner_text()
    page.goto(f"/runs/{run['run_id']}")
    assert new_run_id in page.locator("#reruns").inner_text()


def test_rerun_from_a_step_with_an_edited_output(page, stack) -> None:
    server, app = stack
    ok = server.run_once({"name": "test/three-steps", "data": {"start": 1}})
    page.goto(f"/runs/{ok['run_id']}")
    page.click("#rerun-from-step summary:has-text('two')")
    form = page.locator("#rerun-from-step details[data-step='two'] form")
    form.locator("textarea").fill("99")
    form.locator("button[value='1']").click()
    page.wait_for_url(re.compile(r".*/runs/(?!%s)[0-9A-Z]{26}$" % ok["run_id"]))
    new_run_id = page.url.rsplit("/", 1)[1]
    assert server.wait_for_end(new_run_id)["output"]["result"] == {"one": 2, "two": 99}  # "one" kept, "two" as edited
    page.wait_for_function("document.getElementById('run-status').innerText === 'Completed'")
    assert "from step “two”" in page.locator("#rerun-of").inner_text()
    assert "output given for this rerun" in page.locator("#timeline").inner_text()
    shot_at_widths(page, "run-rerun-from-step", mode_of(server))


def test_the_send_event_dialog_starts_a_run_from_any_page(page, stack) -> None:
    server, app = stack
    page.goto("/apps/")
    page.click("#open-send-event")
    dialog = page.locator("#send-event-dialog")
    dialog.locator("input[name=name]").fill("test/three-steps")
    dialog.locator("textarea[name=data]").fill('{"start": 5}')
    shot(page, "send-event-dialog-1280", mode_of(server))
    dialog.locator("button:has-text('Send event')").click()
    page.wait_for_url(re.compile(r".*/events/[0-9A-Z]{26}$"))
    run_link = page.locator("a.mono[href^='/runs/']")
    wait_for(lambda: (page.reload() or True) and run_link.count() > 0, what="the run to show up")
    assert server.wait_for_end(run_link.first.inner_text())["output"]["result"]["one"] == 6


def test_a_test_event_sent_from_the_function_page_starts_a_run(page, stack) -> None:
    server, app = stack
    page.goto(f"/functions/{app.app_id}-three-steps")
    page.fill("#send-event textarea[name=data]", '{"start": 41}')
    page.click("#send-event button")
    page.wait_for_url(re.compile(r".*/events/[0-9A-Z]{26}$"))
    wait_for(lambda: (page.reload() or True) and page.locator("a.mono").count() > 0, what="the run to show up")
    run_id = page.locator("a.mono").first.inner_text()
    assert server.wait_for_end(run_id)["output"]["result"]["one"] == 42


def test_a_run_started_after_the_page_loaded_appears_without_a_reload(page, stack) -> None:
    server, app = stack
    page.goto("/runs/")
    page.evaluate("window.loadedOnce = true")  # gone if the page reloads
    (internal_id,) = server.send({"name": "test/sleeps", "data": {"seconds": 6}})
    (run,) = server.wait_for_runs(internal_id)
    page.wait_for_selector(f"#run-rows a:has-text('{run['run_id']}')", timeout=15_000)  # the htmx poll brought it in
    assert page.evaluate("window.loadedOnce === true")
    shot(page, "runs-live-1280", mode_of(server))

    page.click(f"#run-rows a:has-text('{run['run_id']}')")
    page.evaluate("window.loadedOnce = true")
    page.wait_for_selector("#timeline li.wait:has-text('sleeping until')", timeout=15_000)
    page.wait_for_function("document.getElementById('run-status').innerText === 'Completed'", timeout=20_000)
    assert page.evaluate("window.loadedOnce === true")  # the sleeping run woke and ended on this page
    assert page.locator("#timeline li.step:has-text('nap')").count() == 1
    assert page.locator("#run-live[hx-trigger]").count() == 0  # ended: the polling stopped
    shot(page, "run-woke-live-1280", mode_of(server))


def test_the_event_stream_updates_without_a_reload(page, stack) -> None:
    server, app = stack
    page.goto("/events/")
    name = f"test/stream-{uuid.uuid4().hex[:8]}"
    (internal_id,) = server.send({"name": name, "data": {}})
    page.wait_for_selector(f"text={internal_id}", timeout=10_000)  # the htmx poll brought it in
    shot(page, "events-live", mode_of(server))
