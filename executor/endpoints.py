"""Durable Endpoints (protocol-next.md §1, issue 20): the JS SDK runs an HTTP handler's steps inside
the app's own request and checkpoints them here.

- `POST /v1/checkpoint` starts the run (its function is created on the route's first request);
- `POST /v1/checkpoint/{runId}/steps` carries what the handler did since: finished steps, its
  response (RunComplete), or what makes the run go async (a sleep, a wait, a step error to retry,
  parallel steps). Those are read as the answer to a call would be (executor/decision.py) and
  applied the same way (runs/lifecycle.py); from then on the server calls the endpoint itself;
- `GET /v1/http/runs/{runId}/output?token=` waits for the run's response, for the redirect the
  SDK sends the client when the run went async.
"""
from __future__ import annotations

import hashlib
import json
import random
import time
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.utils import timezone
from ulid import ULID

from executor.decision import Clock, decide
from executor.limits import configured_limits
from executor.opcodes import Op, Opcode, UnknownOpcodeError, parse_ops
from executor.responses import CallView, SdkResponse
from executor.run_loop import RunMemo
from functions.endpoints import EndpointRoute, upsert_endpoint_function
from realtime.tokens import mint_run_stream_token
from runs import lifecycle, pending_calls
from runs.decision_commands import Decision, ScheduleCall
from runs.endpoint_runs import RunExists, start_endpoint_run
from runs.models import ACTIVE_STATUSES, Run, RunStatus
from runs.recording import AttemptRow

# The SDK names the step of the handler's own result or error "complete" (hashed).
COMPLETE_STEP_ID = hashlib.sha1(b"complete").hexdigest()
OUTPUT_TOKEN_SALT = "inngest.durable-endpoint.output"
OUTPUT_TOKEN_SECONDS = 24 * 3600
_STEP_DONE = {Opcode.STEP_RUN, Opcode.STEP}


class EndpointError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class NewEndpointRun:
    run_id: str
    route: EndpointRoute
    event: dict
    steps: list
    request_version: int


def read_new_run(body: Any) -> NewEndpointRun:
    """The `POST /v1/checkpoint` body, or EndpointError(400) saying what is wrong."""
    if not isinstance(body, dict):
        raise EndpointError(400, "the body must be a JSON object")
    run_id, event, steps = body.get("run_id"), body.get("event"), body.get("steps") or []
    try:
        ULID.from_str(run_id if isinstance(run_id, str) else "")
    except ValueError:
        raise EndpointError(400, "run_id must be a ULID") from None
    data = event.get("data") if isinstance(event, dict) else None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str) and data.get(k) for k in ("domain", "method", "path")):
        raise EndpointError(400, "event.data must name the request's domain, method and path")
    if not isinstance(steps, list):
        raise EndpointError(400, "steps must be an array of ops")
    retries = body.get("retries")
    retries = retries if type(retries) is int and 0 <= retries <= 20 else 3
    version = body.get("request_version")
    route = EndpointRoute(origin=data["domain"].rstrip("/"), method=data["method"].upper()[:16], path=data["path"],
                          name=str(data.get("fn") or ""), retries=retries)
    return NewEndpointRun(run_id.upper(), route, event, steps, version if type(version) is int and 0 <= version <= 2 else 2)


def checkpoint_new_run(new: NewEndpointRun, body_bytes: int) -> dict[str, str]:
    """Start the run, record its first steps; what the SDK needs to go on (its `data`)."""
    function = upsert_endpoint_function(new.route)
    now = timezone.now()
    try:
        start_endpoint_run(function, new.run_id, new.event, new.request_version, _resume_at(now), now)
    except RunExists:
        raise EndpointError(409, "Run already exists") from None
    if new.steps:
        checkpoint_steps(new.run_id, new.steps, body_bytes)
    return {"fn_id": str(function.id), "app_id": str(function.app_id), "run_id": new.run_id,
            "token": output_token(new.run_id), "realtime_token": realtime_token_for_run(new.run_id)}


def checkpoint_steps(run_id: str, steps: Any, body_bytes: int) -> None:
    """Apply what the handler reports, as the answer to a discovery call of the run would be."""
    try:
        ops = [op for op in parse_ops(steps) if op.op is not Opcode.NONE]
    except UnknownOpcodeError as exc:
        raise EndpointError(400, f"invalid op: {exc}") from None
    if not ops:
        return
    owner = f"endpoint:{uuid.uuid4().hex[:12]}"
    now = timezone.now()
    call = pending_calls.claim_endpoint_call(run_id, owner, settings.INNGEST_LEASE_SECONDS, now)
    if call is None:
        if not Run.objects.filter(id=run_id).exists():
            raise EndpointError(404, "run not found")
        raise EndpointError(409, "the run has ended or is being called by the server")
    memo = RunMemo.load(call.run)
    decision = _endpoint_decision(call, memo, ops, steps, body_bytes, now)
    attempt = AttemptRow(run_id=call.run_id, step_target="step", step_id=decision.step_id, step_name=decision.step_name[:255],
                         attempt=call.attempt, status_code=None, opcode=decision.opcode, output=decision.output,
                         error=decision.error, started_at=now, ended_at=timezone.now(), is_checkpointed=True)
    applied = lifecycle.apply_decision(call, owner, decision, attempt, settings.INNGEST_LEASE_SECONDS, len(memo.stack))
    if applied.next_call is not None:
        pending_calls.release_call(applied.next_call, owner)  # due now (the SDK asked for discovery): a worker makes it


def _endpoint_decision(call: Any, memo: RunMemo, ops: list[Op], steps: Any, body_bytes: int, now: datetime) -> Decision:
    run = call.run
    view = CallView("step", call.attempt, run.function.max_attempts, run.is_immediate_execution_disabled,
                    steps_recorded=len(memo.stack), memoized=memo.steps.keys(), state_bytes=memo.state_bytes,
                    limits=configured_limits())
    clock = Clock(now=now, jitter_fraction=random.random(), linear_retry_seconds=settings.INNGEST_RETRY_INTERVAL)
    handler_error = next((op for op in ops if op.id == COMPLETE_STEP_ID and op.op in (Opcode.STEP_ERROR, Opcode.STEP_FAILED)), None)
    if handler_error is not None:
        # The handler itself threw: a function error, retried (by calling the endpoint) or final.
        answer = SdkResponse(status=500, body=handler_error.error, has_sdk_header=True,
                             is_no_retry=handler_error.op is Opcode.STEP_FAILED, body_bytes=body_bytes)
        return decide(view, answer, clock)
    decision = decide(view, SdkResponse(status=206, body=steps, has_sdk_header=True, body_bytes=body_bytes), clock)
    if all(op.op in _STEP_DONE for op in ops):
        # Steps that finished while the handler goes on: no call now, only the resume call if it goes silent.
        commands = tuple(_resume_later(command, now) for command in decision.commands)
        decision = replace(decision, commands=commands, disable_immediate_execution=None,
                           opcode=decision.opcode if decision.opcode != "Parallel" else ops[-1].op.value)
    return decision


def _resume_later(command: Any, now: datetime) -> Any:
    if isinstance(command, ScheduleCall) and command.step_target == "step" and command.attempt == 0 and command.due_at <= now:
        return ScheduleCall("step", 0, _resume_at(now))
    return command


def _resume_at(now: datetime) -> datetime:
    return now + timedelta(seconds=settings.INNGEST_ENDPOINT_RESUME_SECONDS)


# --- the output ----------------------------------------------------------------------------

@dataclass(frozen=True)
class EndpointOutput:
    body: bytes
    content_type: str = "application/json"


def wait_for_output(run_id: str, seconds: float) -> EndpointOutput | None:
    """The run's response once it ends (None: no such run); after `seconds`, a note that it is
    still running. A completed run's output is the handler's response: its body is answered."""
    deadline = time.monotonic() + seconds
    while True:
        row = Run.objects.filter(id=run_id).values_list("status", "output").first()
        if row is None:
            return None
        status, output = row
        if status not in ACTIVE_STATUSES:
            return _output_of(status, output)
        if time.monotonic() >= deadline:
            return EndpointOutput(json.dumps({"status": "running", "message": f"run did not end within {seconds:g} s"}).encode())
        time.sleep(0.2)


def _output_of(status: str, output: Any) -> EndpointOutput:
    if status == RunStatus.COMPLETED and isinstance(output, dict) and isinstance(output.get("body"), str):
        headers = output.get("headers") if isinstance(output.get("headers"), dict) else {}
        content_type = next((str(v) for k, v in headers.items() if str(k).lower() == "content-type"), "application/json")
        return EndpointOutput(output["body"].encode(), content_type)
    if status == RunStatus.COMPLETED:
        return EndpointOutput(json.dumps(output).encode())
    return EndpointOutput(json.dumps({"status": status, "error": output}).encode())


# --- tokens ------------------------------------------------------------------------------------

def output_token(run_id: str) -> str:
    """What the redirect to the run's output carries: good for this run only, for a day."""
    return signing.dumps(run_id, salt=OUTPUT_TOKEN_SALT, compress=False)


def run_id_of_token(token: str) -> str | None:
    try:
        value = signing.loads(token, salt=OUTPUT_TOKEN_SALT, max_age=OUTPUT_TOKEN_SECONDS)
    except signing.BadSignature:
        return None
    return value if isinstance(value, str) else None


def realtime_token_for_run(run_id: str) -> str:
    """The `realtime_token` of the run: what lets the client follow the run's stream (the SDK tees
    it to /v1/realtime/publish/tee?channel=<run id>) at /v1/realtime/sse?token=."""
    return mint_run_stream_token(run_id)
