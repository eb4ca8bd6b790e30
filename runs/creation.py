"""Creating runs: one per (function, idempotency key) while the key is fresh, each with its first call."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable

from django.db import transaction
from django.utils import timezone
from ulid import ULID

from events.models import Event
from executor import dispatch
from executor.durations import DurationError, parse_duration, resolve_due_time
from functions.models import Function
from runs.models import PendingCall, Run, RunIdempotencyKey, Wait, WaitKind
from runs.wait_matching import equality_key

IDEMPOTENCY_TTL = timedelta(hours=24)
DEFAULT_CANCEL_TIMEOUT = timedelta(days=365)


@dataclass(frozen=True)
class RunRequest:
    """A run to start: which function, with which events, deduplicated by which key."""

    function: Function
    event: Event | None
    events: list[dict]
    idempotency_key: str


def create_runs(requests: Iterable[RunRequest]) -> list[Run]:
    """Insert the runs whose idempotency key is fresh, each with its first call; enqueue after commit."""
    requests = list(requests)
    if not requests:
        return []
    now = timezone.now()
    with transaction.atomic():
        winners = _claim_idempotency_keys(requests, now)
        runs = [
            Run(id=run_id, function=req.function, event=req.event, events=req.events, created_at=now)
            for run_id, req in winners
        ]
        Run.objects.bulk_create(runs)
        open_cancel_waits(runs, now)
        open_start_timeouts(runs, now)
        calls = PendingCall.objects.bulk_create(
            [PendingCall(run_id=run.id, due_at=now, enqueued_at=now) for run in runs]
        )
        dispatch.enqueue_calls_on_commit([call.id for call in calls])
    return runs


def _claim_idempotency_keys(requests: list[RunRequest], now: datetime) -> list[tuple[str, RunRequest]]:
    """Insert one key row per request; the requests whose row we inserted win a run id."""
    wanted: dict[tuple, tuple[str, RunRequest]] = {}
    for req in requests:
        # Within one request the first event with a key wins, as it would across requests.
        wanted.setdefault((req.function.id, req.idempotency_key), (str(ULID()), req))
    keys = [key for _, key in wanted]
    RunIdempotencyKey.objects.filter(key__in=keys, expires_at__lt=now).delete()
    RunIdempotencyKey.objects.bulk_create(
        [
            RunIdempotencyKey(function_id=fn_id, key=key, run_id=run_id, expires_at=now + IDEMPOTENCY_TTL)
            for (fn_id, key), (run_id, _) in wanted.items()
        ],
        ignore_conflicts=True,
    )
    stored = RunIdempotencyKey.objects.filter(key__in=keys, function_id__in={fn for fn, _ in wanted})
    won = {(row.function_id, row.key) for row in stored if wanted.get((row.function_id, row.key), ("",))[0] == row.run_id}
    return [wanted[pair] for pair in wanted if pair in won]


def open_cancel_waits(runs: list[Run], now: datetime) -> None:
    """One cancel wait per entry of the function's `cancel` config (protocol.md §4.7)."""
    waits = []
    for run in runs:
        for index, entry in enumerate(run.function.config.get("cancel") or []):
            if not isinstance(entry, dict) or not entry.get("event"):
                continue
            expression = str(entry.get("if") or "")
            match_path, match_value = equality_key(expression, (run.events or [{}])[0])
            waits.append(Wait(
                run=run, kind=WaitKind.CANCEL, step_id=f"cancel-{index}", event_name=str(entry["event"]),
                expression=expression, match_path=match_path, match_value=match_value,
                expires_at=_cancel_expiry(entry.get("timeout"), now), created_at=now,
            ))
    Wait.objects.bulk_create(waits)


def _cancel_expiry(timeout: object, now: datetime) -> datetime:
    if not timeout:
        return now + DEFAULT_CANCEL_TIMEOUT
    try:
        return resolve_due_time(str(timeout), now)
    except DurationError:
        return now + DEFAULT_CANCEL_TIMEOUT


def open_start_timeouts(runs: list[Run], now: datetime) -> None:
    """`timeouts.start`: a run not started within the period is cancelled (protocol.md §4.7)."""
    Wait.objects.bulk_create([wait for run in runs if (wait := timeout_wait(run, "start", now)) is not None])


def timeout_wait(run: Run, which: str, now: datetime) -> Wait | None:
    """The Wait that cancels `run` when its `timeouts.<which>` ("start" or "finish") runs out."""
    period = (run.function.config.get("timeouts") or {}).get(which)
    if not period:
        return None
    try:
        expires_at = now + parse_duration(str(period))
    except DurationError:
        return None  # validated at sync
    step_id = f"timeout-{which}"
    return Wait(run=run, kind=WaitKind.TIMEOUT, step_id=step_id, step_name=step_id, event_name="",
                expires_at=expires_at, created_at=now)
