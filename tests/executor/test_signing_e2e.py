"""Production with keys on: a cloud-mode SDK app (signing and verifying) against a server with a
signing key, its fallback, and event keys (protocol.md §1.2, §3.3)."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from typing import Iterator

import inngest
import pytest
import redis
import requests

from executor.signing import signature
from tests.sdk_app import SdkApp, sync
from tests.stacks import MANAGE, ROOT, ProductionStack, query_function, recreate_database, stack_redis_url

pytestmark = pytest.mark.e2e

KEY = "signkey-prod-" + "a1" * 32
OLD_KEY = "signkey-prod-" + "b2" * 32
WRONG_KEY = "signkey-prod-" + "c3" * 32
EVENT_KEY = "e2e-event-key-" + "7" * 20
DATABASE, REDIS_URL = "inngest_e2e_cloud", stack_redis_url(12)


def manage(stack: ProductionStack, *args: str) -> str:
    done = subprocess.run([sys.executable, MANAGE, *args], env=stack.env, cwd=ROOT, check=True, capture_output=True, text=True)
    return done.stdout


@pytest.fixture(scope="module")
def cloud_stack() -> Iterator[ProductionStack]:
    database_url = recreate_database(DATABASE)
    redis.Redis.from_url(REDIS_URL).flushdb()
    query, connection = query_function(database_url)

    stack = ProductionStack(database_url, REDIS_URL, query,
                            extra_env={"INNGEST_SIGNING_KEY": KEY, "INNGEST_SIGNING_KEY_FALLBACK": OLD_KEY})
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
