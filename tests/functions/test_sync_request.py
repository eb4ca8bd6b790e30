"""The server's PUT to an app (functions/sync_request.py) against whatever answers: redirects stay
within the app's origin, answers are capped, and a failure is one short line in our words."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterator

import pytest
from django.test import Client

from functions.models import App
from functions.sync_request import SYNC_MAX_ANSWER_BYTES, request_sync
from tests.sdk_app import free_port

pytestmark = pytest.mark.django_db

Answer = tuple[int, dict[str, str], bytes]
HTML = b"<html><head><title>502 Bad Gateway</title></head><body>" + b"<p>upstream exploded</p>" * 48 + b"</body></html>"


class FakeApp:
    """An HTTP server answering each PUT with `answer(path)`, recording the paths it was asked."""

    def __init__(self, answer: Callable[[str], Answer]) -> None:
        self.paths: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.paths.append(self.path)
                status, headers, body = answer(self.path)
                self.send_response(status)
                for name, value in {"Content-Length": str(len(body)), **headers}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_app() -> Iterator[Callable[[Callable[[str], Answer]], FakeApp]]:
    started: list[FakeApp] = []

    def start(answer: Callable[[str], Answer]) -> FakeApp:
        started.append(FakeApp(answer))
        return started[-1]

    yield start
    for app in started:
        app.stop()


def json_answer(status: int, body: object) -> Answer:
    return status, {"Content-Type": "application/json"}, json.dumps(body).encode()


@pytest.mark.parametrize(("answer", "error"), [
    ((502, {"Content-Type": "text/html; charset=utf-8"}, HTML), "HTTP 502 from app (text/html, 1.2 KB)"),
    ((500, {}, b""), "HTTP 500 from app (no content type, 0 B)"),
    (json_answer(401, {"message": "Unauthorized:\n\tsignature\x1b[31m invalid"}), "HTTP 401 from app: Unauthorized: signature [31m invalid"),
    (json_answer(200, {"error": "register failed: " + "x" * 1000}), "register failed: " + "x" * 132 + "…" + "x" * 150),
], ids=["html error page", "empty 500", "sdk message with control characters", "sdk error, long"])
def test_a_failed_sync_is_one_short_line_in_our_words(fake_app: Callable, client: Client, answer: Answer, error: str) -> None:
    app = fake_app(lambda path: answer)
    assert request_sync(app.url) == error
    stored = App.objects.get(url=app.url).error
    assert stored == error and len(stored) <= 300 and "<" not in stored


def test_the_ui_shows_the_short_line_not_the_apps_page(fake_app: Callable, admin_client: Client) -> None:
    app = fake_app(lambda path: (502, {"Content-Type": "text/html"}, HTML))
    request_sync(app.url)
    page = admin_client.get("/apps/").content.decode()
    assert "HTTP 502 from app (text/html, 1.2 KB)" in page and "upstream exploded" not in page


def test_a_redirect_to_another_origin_is_not_followed(fake_app: Callable) -> None:
    elsewhere = fake_app(lambda path: json_answer(200, {"message": "Successfully registered"}))
    app = fake_app(lambda path: (307, {"Location": f"{elsewhere.url}/api/inngest"}, b""))
    error = request_sync(app.url)
    assert error == (f"HTTP 307 from app: redirected to another origin ({elsewhere.url}); "
                     "sync the app at its final URL")
    assert elsewhere.paths == []  # the server's request never reached it


def test_a_redirect_within_the_apps_origin_is_followed(fake_app: Callable) -> None:
    app = fake_app(lambda path: json_answer(200, {"message": "Successfully registered"}) if path == "/api/inngest"
                   else (308, {"Location": "/api/inngest"}, b""))
    assert request_sync(f"{app.url}/old") == ""
    assert app.paths == ["/old", "/api/inngest"]


def test_endless_redirects_stop(fake_app: Callable) -> None:
    app = fake_app(lambda path: (302, {"Location": path + "x"}, b""))
    assert request_sync(app.url + "/a") == "more than 5 redirects from the app"
    assert len(app.paths) == 6


def test_an_answer_over_the_cap_is_not_read(fake_app: Callable) -> None:
    app = fake_app(lambda path: (200, {"Content-Type": "application/json"}, b" " * (SYNC_MAX_ANSWER_BYTES + 1)))
    assert request_sync(app.url) == "HTTP 200 from app: answer larger than 1024 KB"


def test_an_unreachable_app_is_said_in_a_few_words() -> None:
    url = f"http://127.0.0.1:{free_port()}/api/inngest"
    assert request_sync(url) == "unreachable: Connection refused"
    assert App.objects.get(name=url).error == "unreachable: Connection refused"
