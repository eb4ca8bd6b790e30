"""`POST /v1/checkpoint/{runId}/async` served by the ASGI worker itself (inngest_project/
checkpoint_route.py) answers as the Django view does: the same status, JSON and headers, the same
rows written; and what it does not take (another path, a request the signing key refuses, a body
over the cap) Django answers as before."""
from __future__ import annotations

import asyncio
import json
from typing import Iterator

import httpx
import pytest
from a2wsgi import WSGIMiddleware
from django.core.wsgi import get_wsgi_application
from django.test import override_settings
from ulid import ULID

from inngest_project.checkpoint_route import CheckpointRoute
from inngest_project.native_route import in_front_of
from runs import pending_calls
from runs.models import PendingCall, Run, RunStatus, Step, StepAttempt
from tests.factories import make_function
from tests.route_pools import CountingPool, close_each_thread_connection

pytestmark = pytest.mark.django_db(transaction=True)
THREADS = 2
SIGNING_KEY = "signkey-test-" + "ab" * 32


route = CheckpointRoute(CountingPool(THREADS, "counted-checkpoint-route"))
django_application = WSGIMiddleware(get_wsgi_application(), workers=THREADS)
application = in_front_of(django_application, route)


@pytest.fixture(autouse=True, scope="module")
def close_thread_connections() -> Iterator[None]:
    """Each thread of the pools keeps a connection that would hold the test database open."""
    yield
    for pool in (route.pool, django_application.executor):
        close_each_thread_connection(pool, THREADS)


def post(path: str, body: bytes, app=None, **headers: str) -> httpx.Response:
    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app or application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.post(path, content=body, headers={"content-type": "application/json", **headers})
    return asyncio.run(send())


def both(path: str, body: bytes, **headers: str) -> tuple[httpx.Response, httpx.Response, int]:
    """The route's answer, Django's answer to the same request, and how many the route served."""
    used = route.pool.used
    native = post(path, body, **headers)
    served = route.pool.used - used
    return native, post(path, body, app=django_application, **headers), served


def same_answer(native: httpx.Response, django: httpx.Response) -> None:
    assert (native.status_code, native.json()) == (django.status_code, django.json())
    assert {k: v for k, v in native.headers.items() if k != "content-length"} == \
        {k: v for k, v in django.headers.items() if k != "content-length"}


def held_call() -> PendingCall:
    run = Run.objects.create(id=str(ULID()), function=make_function(), events=[{"name": "test/event", "data": {}}],
                             status=RunStatus.RUNNING)
    row = PendingCall.objects.create(run=run, step_target="step", attempt=2)
    call = pending_calls.claim_call(row.id, "worker-1", 30)
    assert call is not None
    return call


def checkpoint(call: PendingCall, *step_ids: str, generation: int | None = None) -> bytes:
    steps = [{"op": "StepRun", "id": step_id, "name": step_id, "displayName": step_id, "data": {"n": step_id},
              "timing": {"a": 1_700_000_000_000_000_000, "b": 5_000_000}} for step_id in step_ids]
    return json.dumps({"run_id": call.run_id, "qi_id": str(call.id), "steps": steps,
                       "generation_id": call.generation if generation is None else generation}).encode()


def test_a_checkpoint_is_stored_by_the_route_as_by_the_view() -> None:
    by_route, by_view = held_call(), held_call()
    used = route.pool.used
    native = post(f"/v1/checkpoint/{by_route.run_id}/async", checkpoint(by_route, "a", "b"))
    assert route.pool.used == used + 1
    django = post(f"/v1/checkpoint/{by_view.run_id}/async", checkpoint(by_view, "a", "b"), app=django_application)
    same_answer(native, django)
    assert native.json() == {"data": {"stored": 2}}

    def written(call: PendingCall) -> tuple:
        steps = list(Step.objects.filter(run_id=call.run_id).order_by("position").values_list("step_id", "output", "position"))
        attempts = list(StepAttempt.objects.filter(run_id=call.run_id).order_by("id").values_list(
            "step_id", "opcode", "output", "is_checkpointed"))
        return steps, attempts, PendingCall.objects.filter(id=call.id).values_list("attempt", "job_stack").get()
    assert written(by_route) == written(by_view)
    assert written(by_route)[2] == (0, 0)


@pytest.mark.parametrize("case", ["not json", "not an object", "stale", "unknown run"])
def test_refusals_are_the_views(case: str) -> None:
    call = held_call()
    path, body = f"/v1/checkpoint/{call.run_id}/async", checkpoint(call, "a")
    if case == "not json":
        body = b"{nope"
    elif case == "not an object":
        body = b"[]"
    elif case == "stale":
        body = checkpoint(call, "a", generation=call.generation + 1)
    else:
        path = f"/v1/checkpoint/{ULID()}/async"
        body = json.dumps({"qi_id": str(call.id), "steps": []}).encode()
    native, django, served = both(path, body)
    assert served == 1
    same_answer(native, django)
    assert native.status_code == {"not json": 400, "not an object": 400, "stale": 409, "unknown run": 404}[case]
    assert not Step.objects.filter(run_id=call.run_id).exists()


@override_settings(INNGEST_SIGNING_KEY=SIGNING_KEY)
def test_with_a_signing_key_the_route_serves_only_the_authorized() -> None:
    call = held_call()
    path = f"/v1/checkpoint/{call.run_id}/async"
    for headers in ({}, {"authorization": "Bearer signkey-test-" + "cd" * 32}):
        native, django, served = both(path, checkpoint(call, "a"), **headers)
        assert served == 0  # Django's answer: 401
        assert native.status_code == django.status_code == 401
        assert native.content == django.content
    assert not Step.objects.filter(run_id=call.run_id).exists()
    native = post(path, checkpoint(call, "a"), authorization=f"Bearer {SIGNING_KEY}")
    assert native.status_code == 200 and native.json() == {"data": {"stored": 1}}


def test_what_the_route_does_not_take_django_answers() -> None:
    call = held_call()
    used = route.pool.used
    for path in (f"/v1/checkpoint/{call.run_id}/steps", f"/v1/checkpoint/{call.run_id}/async/more", "/v1/checkpoint//async"):
        native = post(path, checkpoint(call, "a"))
        assert native.status_code == post(path, checkpoint(call, "a"), app=django_application).status_code
    with override_settings(INNGEST_MAX_SDK_REQUEST_BYTES=100):
        native, django, served = both(f"/v1/checkpoint/{call.run_id}/async", checkpoint(call, "a", "b", "c"))
        assert served == 0 and native.status_code == 413
        same_answer(native, django)
    assert route.pool.used == used
