"""Production with keys on: a cloud-mode SDK app (signing and verifying) against a server with a
signing key, its fallback, and event keys (protocol.md §1.2, §3.3)."""
from __future__ import annotations

import hashlib
import http.client
import json
import socket
import subprocess
import sys
from typing import Iterator

import inngest
import pytest
import redis
import requests

from executor.signing import signature
from tests.sdk_app import SdkApp, sync
from tests.stacks import MANAGE, ROOT, ProductionStack, query_function, recreate_database, stack_redis_url, wait_for

pytestmark = pytest.mark.e2e

KEY = "signkey-prod-" + "a1" * 32
OLD_KEY = "signkey-prod-" + "b2" * 32
WRONG_KEY = "signkey-prod-" + "c3" * 32
EVENT_KEY = "e2e-event-key-" + "7" * 20
# As `inngest start` takes them: INNGEST_EVENT_KEY, comma-separated.
ENV_EVENT_KEYS = ("env-event-key-one-" + "1" * 16, "env-event-key-two-" + "2" * 16)
DATABASE, REDIS_URL = "inngest_e2e_cloud", stack_redis_url(12)


def manage(stack: ProductionStack, *args: str) -> str:
    done = subprocess.run([sys.executable, MANAGE, *args], env=stack.env, cwd=ROOT, check=True, capture_output=True, text=True)
    return done.stdout


@pytest.fixture(scope="module")
def cloud_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProductionStack]:
    """Closed, as production starts by default: no INNGEST_INSECURE. What it logs goes to `stack.log_path`."""
    database_url = recreate_database(DATABASE)
    redis.Redis.from_url(REDIS_URL).flushdb()
    query, connection = query_function(database_url)
    log_path = tmp_path_factory.mktemp("cloud-stack") / "output.log"

    with log_path.open("w") as output:
        stack = ProductionStack(database_url, REDIS_URL, query, insecure=False, output=output, extra_env={
            "INNGEST_SIGNING_KEY": KEY, "INNGEST_SIGNING_KEY_FALLBACK": OLD_KEY, "INNGEST_EVENT_KEY": ",".join(ENV_EVENT_KEYS)})
    stack.log_path = log_path
    try:
        manage(stack, "event_keys", "create", "e2e", "--key", EVENT_KEY)
        stack.event_key = EVENT_KEY
        stack.headers = {"Authorization": f"Bearer {KEY}"}
        yield stack
    finally:
        stack.stop()
        connection.close()
        recreate_database(DATABASE, create=False)


def test_a_cloud_mode_app_syncs_and_runs_with_signed_calls_and_answers(cloud_stack: ProductionStack) -> None:
    app = SdkApp("cloud", cloud_stack.base_url, signing_key=KEY, event_key=EVENT_KEY)
    try:
        sync(app)  # the SDK registers with Bearer <hash of the key>
        assert requests.get(f"{cloud_stack.base_url}/health", timeout=5).headers["X-Inngest-Server-Kind"] == "cloud"
        run = cloud_stack.run_once({"name": "test/three-steps", "data": {"start": 1}})
        # The SDK refuses unsigned or wrongly signed calls in cloud mode, and the server refuses
        # answers whose signature does not verify: a completed run proves both directions.
        assert run["status"] == "Completed" and run["output"]["result"] == {"one": 2, "two": 20}
        # ... and the same call signed with another key is refused by the app.
        body = json.dumps({"event": {"name": "x", "data": {}}, "events": [], "steps": {}, "use_api": False,
                           "ctx": {"run_id": "01X", "attempt": 0, "disable_immediate_execution": False, "stack": {"stack": []}}}).encode()
        forged = requests.post(f"{app.url}?fnId=cloud-three-steps&stepId=step", data=body, timeout=5, headers={
            "X-Inngest-Signature": signature(body, WRONG_KEY), "Content-Type": "application/json"})
        assert forged.status_code == 401
        # The app's own client sends events with the event key it was given.
        (internal_id,) = app.client.send_sync(inngest.Event(name="test/three-steps", data={"start": 5}))
        (sent,) = cloud_stack.wait_for_runs(internal_id)
        assert cloud_stack.wait_for_end(sent["run_id"])["output"]["result"]["one"] == 6
    finally:
        app.stop()


def test_key_rotation_with_the_fallback_key(cloud_stack: ProductionStack) -> None:
    # An app still holding the old key as its main key, and the new key as its fallback.
    # Same app id as above: the sync moves its functions to this app's URL.
    app = SdkApp("cloud", cloud_stack.base_url, signing_key=OLD_KEY, signing_key_fallback=KEY, event_key=EVENT_KEY)
    try:
        sync(app)  # Bearer <hash of the old key>: accepted as the server's fallback
        run = cloud_stack.run_once({"name": "test/three-steps", "data": {"start": 7}})
        assert run["status"] == "Completed"  # calls signed with the new key verified by the app's fallback
        assert run["output"]["result"]["one"] == 8
    finally:
        app.stop()


def test_wrong_keys_are_refused_with_401(cloud_stack: ProductionStack) -> None:
    base = cloud_stack.base_url
    wrong = {"Authorization": f"Bearer {WRONG_KEY}"}
    answer = requests.post(f"{base}/fn/register", json={}, headers=wrong, timeout=5)
    assert (answer.status_code, answer.text) == (401, "Authentication failed")
    assert requests.get(f"{base}/v1/events", timeout=5).status_code == 401
    assert requests.get(f"{base}/v1/events", headers=cloud_stack.headers, timeout=5).status_code == 200
    hashed = {"Authorization": "Bearer signkey-prod-" + hashlib.sha256(bytes.fromhex("a1" * 32)).hexdigest()}
    assert requests.get(f"{base}/v1/events", headers=hashed, timeout=5).status_code == 200
    assert requests.post(f"{base}/v0/gql", json={"query": "{ run(runID: \"x\") { id } }"}, timeout=5).status_code == 401

    app = SdkApp("wrong-key", base, signing_key=WRONG_KEY, event_key=EVENT_KEY)
    try:
        answer = requests.put(app.url, timeout=10)
        assert answer.status_code != 200 or "error" in answer.json()
        assert cloud_stack.query("SELECT count(*) FROM functions_app WHERE name = 'wrong-key'", [])[0][0] == 0
    finally:
        app.stop()


def test_only_configured_event_keys_are_accepted(cloud_stack: ProductionStack) -> None:
    base = cloud_stack.base_url
    event = {"name": "test/unmatched", "data": {}}
    refused = requests.post(f"{base}/e/not-a-key", json=event, timeout=5)
    assert refused.status_code == 401 and refused.json()["error"] == "Event key not found"
    key = manage(cloud_stack, "event_keys", "create", "short-lived").strip()
    assert requests.post(f"{base}/e/{key}", json=event, timeout=5).status_code == 200
    assert "short-lived" in manage(cloud_stack, "event_keys", "list")
    assert manage(cloud_stack, "event_keys", "revoke", key[:8], "--dry-run").strip() == "would revoke 1 keys"
    assert manage(cloud_stack, "event_keys", "revoke", key[:8]).strip() == "revoked 1 keys"
    assert requests.post(f"{base}/e/{key}", json=event, timeout=5).status_code == 401
    ((stored_hash, hint),) = cloud_stack.query("SELECT key_hash, hint FROM events_eventkey WHERE name = 'short-lived'", [])
    assert (stored_hash, hint) == (hashlib.sha256(key.encode()).hexdigest(), key[:8])  # the key itself is not stored


def test_event_keys_from_the_environment_are_accepted_beside_the_database(cloud_stack: ProductionStack) -> None:
    base = cloud_stack.base_url
    event = {"name": "test/unmatched", "data": {}}
    for key in ENV_EVENT_KEYS:
        answer = requests.post(f"{base}/e/{key}", json=event, timeout=5)
        assert answer.status_code == 200 and len(answer.json()["ids"]) == 1
    hashes = [hashlib.sha256(key.encode()).hexdigest() for key in ENV_EVENT_KEYS]
    assert cloud_stack.query("SELECT count(*) FROM events_eventkey WHERE key_hash = ANY(%s)", [hashes])[0][0] == 0
    assert requests.post(f"{base}/e/{ENV_EVENT_KEYS[0]}x", json=event, timeout=5).status_code == 401


def test_invoke_takes_the_signing_key_and_health_says_nothing_of_insecure(cloud_stack: ProductionStack) -> None:
    base = cloud_stack.base_url
    assert requests.post(f"{base}/invoke/cloud-three-steps", json={"data": {}}, timeout=5).status_code == 401
    missing = requests.post(f"{base}/invoke/no-such-function", json={"data": {}}, headers=cloud_stack.headers, timeout=5)
    assert (missing.status_code, missing.json()["error"]) == (404, "function not found: no-such-function")
    assert requests.get(f"{base}/health", timeout=5).json() == {"status": 200, "message": "OK"}


@pytest.mark.parametrize(("path", "headers", "shape"), [
    (f"/e/{EVENT_KEY}", {}, {"ids": [], "status": 413}),
    ("/fn/register", {"Authorization": f"Bearer {KEY}"}, {"status": 413}),
    ("/invoke/cloud-three-steps", {"Authorization": f"Bearer {KEY}"}, {"status": 413}),
    ("/v1/cancellations", {"Authorization": f"Bearer {KEY}"}, {"status": 413}),
], ids=["events", "register", "invoke", "v1"])
def test_a_body_over_its_cap_gets_413_before_it_is_sent(cloud_stack: ProductionStack, path: str, headers: dict,
                                                         shape: dict) -> None:
    # Only the headers go out, announcing 300 MiB: the answer comes back without the server reading a byte.
    status, body = announce_body(cloud_stack.port, path, 300 * 1024 * 1024, headers)
    assert status == 413 and shape.items() <= body.items() and body["error"].startswith("Request body is larger than")


def test_an_unauthenticated_register_is_refused_before_its_size_is_looked_at(cloud_stack: ProductionStack) -> None:
    assert announce_body(cloud_stack.port, "/fn/register", 300 * 1024 * 1024, {})[0] == 401


def test_no_event_key_or_signing_key_reaches_the_logs(cloud_stack: ProductionStack) -> None:
    base = cloud_stack.base_url
    stranger = "stranger-key-" + "5" * 20
    assert requests.post(f"{base}/e/{stranger}", json={"name": "a/b"}, timeout=5).status_code == 401
    assert requests.post(f"{base}/e/{ENV_EVENT_KEYS[1]}", data=b"{not json", timeout=5).status_code == 400
    assert requests.post(f"{base}/e/{EVENT_KEY}", data=b"[", timeout=5).status_code == 400
    assert requests.get(f"{base}/v1/events", headers={"Authorization": f"Bearer {WRONG_KEY}"}, timeout=5).status_code == 401
    # The workers and gunicorn write their lines as they come; the three above are Django's request warnings.
    def logged() -> str:
        text = cloud_stack.log_path.read_text()
        return text if text.count("/e/[redacted]") >= 3 else ""

    text = wait_for(logged, timeout=10, what="the refused requests in the stack's log")
    assert "Unauthorized: /e/[redacted]" in text and "Bad Request: /e/[redacted]" in text
    for secret in (stranger, EVENT_KEY, *ENV_EVENT_KEYS, KEY[13:], OLD_KEY[13:], WRONG_KEY[13:]):
        assert secret not in text


def announce_body(port: int, path: str, length: int, headers: dict[str, str]) -> tuple[int, dict]:
    """POST with only the headers sent: the status and JSON body of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Content-Type: application/json",
                 f"Content-Length: {length}", *(f"{name}: {value}" for name, value in headers.items())]
        connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        response = http.client.HTTPResponse(connection)
        response.begin()
        body = response.read()
    return response.status, (json.loads(body) if response.getheader("Content-Type", "").startswith("application/json") else {})
