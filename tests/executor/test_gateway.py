"""step.fetch and step.ai.infer requests (executor/gateway.py) and the URL policy, made for real
against a fake model server on loopback; no database."""
from __future__ import annotations

import json
import socket
from typing import Iterator

import pytest
from django.test import override_settings

from executor.gateway import ai_request, perform, scrub
from executor.opcodes import parse_op
from executor.url_policy import UrlRefused, approved_target
from tests.fake_model_server import FakeModelServer

LOOPBACK = override_settings(INNGEST_GATEWAY_ALLOWED_NETWORKS=["127.0.0.0/8"])


@pytest.fixture(scope="module")
def model() -> Iterator[FakeModelServer]:
    fake = FakeModelServer()
    yield fake
    fake.stop()


def fetch(url: str, **opts: object) -> dict:
    return {"op": "Gateway", "id": "f1", "opts": {"url": url, "method": "GET", "headers": {}, **opts}}


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/", "http://10.1.2.3/", "http://192.168.0.1/", "http://169.254.169.254/latest/meta-data",
    "http://[::1]/", "http://[::ffff:127.0.0.1]/", "http://0.0.0.0/", "http://localhost:6379/", "http://100.64.0.1/",
])
def test_production_refuses_internal_addresses(url: str) -> None:
    with pytest.raises(UrlRefused):
        approved_target(url)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "gopher://x/", "ftp://127.0.0.1/", "/relative", "http:///nohost"])
def test_only_absolute_http_urls_are_called(url: str) -> None:
    with override_settings(INNGEST_DEV_MODE=True), pytest.raises(UrlRefused):
        approved_target(url)


def test_dev_mode_and_allowed_networks_let_internal_addresses_through() -> None:
    with override_settings(INNGEST_DEV_MODE=True):
        assert approved_target("http://10.1.2.3:8080/x").address == "10.1.2.3"
    with override_settings(INNGEST_GATEWAY_ALLOWED_NETWORKS=["10.1.0.0/16"]):
        assert approved_target("http://10.1.2.3/").port == 80
        with pytest.raises(UrlRefused):
            approved_target("http://10.2.0.1/")


def test_a_public_address_is_allowed_in_production() -> None:
    assert approved_target("https://93.184.215.14/v1").address == "93.184.215.14"


def test_a_refused_fetch_is_an_error_that_is_not_retried() -> None:
    result = perform(parse_op(fetch("http://169.254.169.254/latest/meta-data")))
    assert result.is_retriable is False and result.error["name"] == "GatewayError"
    assert "link-local" in result.error["message"]


@LOOPBACK
def test_fetch_answers_with_status_headers_and_body_and_follows_no_redirect(model: FakeModelServer) -> None:
    result = perform(parse_op(fetch(f"{model.url}/echo", headers={"x-tag": "t1"})))
    assert result.error is None and result.data["status_code"] == 200
    assert json.loads(result.data["body"]) == {"method": "GET", "path": "/echo", "tag": "t1"}
    assert result.data["headers"]["Content-Type"] == "application/json" and result.data["url"] == f"{model.url}/echo"
    moved = perform(parse_op(fetch(f"{model.url}/redirect")))
    assert moved.data["status_code"] == 302 and moved.data["headers"]["Location"] == "/echo"


@LOOPBACK
@override_settings(INNGEST_GATEWAY_MAX_RESPONSE_BYTES=1000)
def test_an_answer_over_the_size_cap_is_an_error(model: FakeModelServer) -> None:
    assert perform(parse_op(fetch(f"{model.url}/big?bytes=500"))).error is None
    too_big = perform(parse_op(fetch(f"{model.url}/big?bytes=5000")))
    assert too_big.is_retriable is False and "larger than 1000 bytes" in too_big.error["message"]


@LOOPBACK
@override_settings(INNGEST_GATEWAY_TIMEOUT_SECONDS=1)
def test_an_answer_past_the_deadline_is_a_retriable_error(model: FakeModelServer) -> None:
    late = perform(parse_op(fetch(f"{model.url}/slow?seconds=3")))
    assert late.is_retriable is True and late.error["name"] == "GatewayError"


@pytest.mark.parametrize(("form", "header", "value"), [
    ("openai-chat", "Authorization", "Bearer sk-secret-value"),
    ("azure-openai", "Authorization", "Bearer sk-secret-value"),
    ("anthropic", "X-Api-Key", "sk-secret-value"),
    ("bedrock", "Authorization", "sk-secret-value"),
])
def test_each_ai_format_authenticates_its_own_way(form: str, header: str, value: str) -> None:
    request = ai_request({"url": "https://api.example.com/v1/chat", "auth_key": "sk-secret-value", "format": form, "body": {}})
    assert request.headers[header] == value and request.url == "https://api.example.com/v1/chat"


def test_gemini_sends_its_key_in_the_query_and_every_secret_is_listed() -> None:
    request = ai_request({"url": "https://g.example.com/v1beta/models/m:generateContent", "auth_key": "k/ey+1",
                          "format": "gemini", "headers": {"api-key": "other-secret"}, "body": {"a": 1}})
    assert request.headers["Api-Key"] == "other-secret"  # names as Inngest (Go) sends them
    assert request.url.endswith(":generateContent?key=k%2Fey%2B1") and "Authorization" not in request.headers
    assert {"k/ey+1", "k%2Fey%2B1", "other-secret"} <= set(request.secrets)


@LOOPBACK
def test_an_ai_error_status_is_retriable_and_its_message_holds_no_key(model: FakeModelServer) -> None:
    op = {"op": "AIGateway", "id": "a1", "opts": {"url": f"{model.url}/v1/chat/completions", "auth_key": "sk-0123456789",
                                                  "format": "openai-chat", "body": {"fail_first": 1, "attempt_key": "t-ai"}}}
    failed = perform(parse_op(op))
    assert failed.is_retriable and "unsuccessful status code: 500" in failed.error["message"]
    assert perform(parse_op(op)).data["choices"][0]["message"]["content"].startswith("echo: ")


def test_a_transport_error_message_is_scrubbed_of_the_key() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed when the block ends: nothing listens there
    op = {"op": "AIGateway", "id": "a1", "opts": {"url": f"http://127.0.0.1:{port}/v1beta/models/m:generateContent",
                                                  "auth_key": "gm-secret-key-123", "format": "gemini", "body": {}}}
    with override_settings(INNGEST_DEV_MODE=True):
        result = perform(parse_op(op))
    assert result.is_retriable and result.error["name"] == "AIGatewayError"
    assert "gm-secret-key-123" not in json.dumps(result.error)


def test_error_texts_are_scrubbed_of_every_secret_longest_first() -> None:
    text = "GET /v1?key=abc%2Fdef and abc/def and Bearer tok-1234"
    assert scrub(text, ("abc/def", "abc%2Fdef", "tok-1234")) == "GET /v1?key=[redacted] and [redacted] and Bearer [redacted]"
