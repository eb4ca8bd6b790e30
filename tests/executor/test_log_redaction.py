"""No key or token in any log line (inngest_project/log_redaction.py): the configured console handler,
a JSON handler, gunicorn's loggers."""
from __future__ import annotations

import hashlib
import io
import json
import logging
from typing import Iterator

import pytest
from django.test import Client, override_settings
from pythonjsonlogger.json import JsonFormatter

from inngest_project.log_redaction import RedactSecretsFilter, redact, redact_gunicorn_logs

pytestmark = pytest.mark.django_db

EVENT_KEY = "evt-secret-4f9c2a7d1e8b"
SIGNING_KEY = "signkey-prod-" + "9f" * 32
HASHED_KEY = hashlib.sha256(bytes.fromhex("9f" * 32)).hexdigest()  # what SDKs send as their bearer token


@pytest.fixture
def console() -> Iterator[io.StringIO]:
    """What the server's own console handler (settings.LOGGING) writes, while the test runs."""
    (handler,) = [h for h in logging.getLogger().handlers if any(isinstance(f, RedactSecretsFilter) for f in h.filters)]
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        yield stream
    finally:
        handler.setStream(previous)


def test_a_bad_event_request_logs_its_path_without_the_event_key(client: Client, console: io.StringIO) -> None:
    answer = client.post(f"/e/{EVENT_KEY}", data=b"{not json", content_type="application/json")
    assert answer.status_code == 400
    output = console.getvalue()
    assert "Bad Request: /e/[redacted]" in output
    assert EVENT_KEY not in output


@override_settings(INNGEST_REQUIRE_EVENT_KEYS=True)
def test_a_refused_event_key_is_not_logged_either(client: Client, console: io.StringIO) -> None:
    assert client.post(f"/e/{EVENT_KEY}", data={"name": "a/b"}, content_type="application/json").status_code == 401
    assert "Unauthorized: /e/[redacted]" in console.getvalue() and EVENT_KEY not in console.getvalue()


def test_json_logs_leave_the_request_out_too(client: Client) -> None:
    # django.request attaches the request; a JSON formatter prints it, and its repr names the path.
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("%(levelname)s %(name)s %(message)s"))
    handler.addFilter(RedactSecretsFilter())
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    try:
        client.post(f"/e/{EVENT_KEY}", data=b"[", content_type="application/json")
    finally:
        logger.removeHandler(handler)
    (line,) = stream.getvalue().splitlines()
    record = json.loads(line)
    assert record["message"] == "Bad Request: /e/[redacted]"
    assert record["request"] == "<WSGIRequest: POST '/e/[redacted]'>"
    assert EVENT_KEY not in line


@override_settings(INNGEST_SIGNING_KEY=SIGNING_KEY, INNGEST_EVENT_KEYS=["configured-event-key-1234"])
@pytest.mark.parametrize(("text", "secret"), [
    ("Authorization: Bearer " + SIGNING_KEY, SIGNING_KEY[13:]),
    ("the key is " + "9f" * 32, "9f" * 32),  # the signing key bare
    ("hashed " + HASHED_KEY, HASHED_KEY),
    ("Authorization: Token 0123456789abcdef0123456789abcdef01234567", "0123456789abcdef"),
    ("sent with configured-event-key-1234 in a message", "configured-event-key-1234"),
    ("broker redis://:s3cr3t-pass@redis:6379/0 lost", "s3cr3t-pass"),
    ("POST /e/abc?x=1 HTTP/1.1", "/e/abc"),
], ids=["bearer", "bare signing key", "hashed signing key", "api token", "INNGEST_EVENT_KEY", "url password", "path"])
def test_secrets_are_redacted_wherever_they_appear(text: str, secret: str) -> None:
    cleaned = redact(text)
    assert "[redacted]" in cleaned and secret not in cleaned


def test_ordinary_words_are_left_alone() -> None:
    text = "throttle token bucket refilled; Bearer of news; run 01ABC step e/x finished"
    assert redact(text) == text


def test_a_traceback_holding_a_key_is_redacted(console: io.StringIO) -> None:
    try:
        raise ValueError(f"could not post to /e/{EVENT_KEY}")
    except ValueError:
        logging.getLogger("events").exception("sending failed")
    assert "ValueError: could not post to /e/[redacted]" in console.getvalue() and EVENT_KEY not in console.getvalue()


def test_gunicorn_access_and_error_logs_are_filtered() -> None:
    redact_gunicorn_logs()
    redact_gunicorn_logs()  # once per logger, however often the application is loaded
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    access = logging.getLogger("gunicorn.access")
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    try:
        access.info('%(h)s "%(r)s" %(s)s', {"h": "10.0.0.1", "r": f"POST /e/{EVENT_KEY} HTTP/1.1", "s": "200"})
    finally:
        access.removeHandler(handler)
    assert stream.getvalue() == '10.0.0.1 "POST /e/[redacted] HTTP/1.1" 200\n'
    assert sum(isinstance(f, RedactSecretsFilter) for f in access.filters) == 1
    assert any(isinstance(f, RedactSecretsFilter) for f in logging.getLogger("gunicorn.error").filters)
