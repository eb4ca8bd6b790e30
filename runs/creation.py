"""Creating runs: one per (function, idempotency key) while the key is fresh, each with its first call."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from ulid import ULID

from core import metrics
from core.durations import DurationError, parse_duration, resolve_due_time
from events.models import Event
from events.system import INVOKED
from functions.flow_config import flow_config_of
from functions.models import Function
from runs import pending_calls
from runs.due_rows import act_on_each
from runs.flow_control import gates
from runs.models import ACTIVE_STATUSES, FlowAction, Run, RunIdempotencyKey, RunStatus, Wait, WaitKind
from runs.sql_batch import insert_select, insert_values
from runs.wait_matching import equality_key

IDEMPOTENCY_TTL = timedelta(hours=24)
DEFAULT_CANCEL_TIMEOUT = timedelta(days=365)
START_BATCH = 200  # due debounces or batches started per timer tick
KEY_CLAIM_BATCH = 1_000  # key rows per statement: SQLite takes at most 32,766 parameters


@dataclass(frozen=True)
class RunRequest:
    """A run to start: which function, with which events, deduplicated by which key."""

    function: Function
    event: Event | None
    events: list[dict]
    idempotency_key: str
    # Why the run starts later than its event (a debounce, a batch), shown as a delay reason.
    delay_reason: str = ""


def create_runs(requests: Iterable[RunRequest]) -> list[Run]:
    """Insert the runs whose idempotency keys are fresh, through flow control's admission; each
    admitted run gets its first call, enqueued after commit. Skipped runs are stored as such."""
    requests = list(requests)
    if not requests:
        return []
    now = timezone.now()
    # No savepoint inside a caller's transaction (events stored, a timer row taken): two round
    # trips per started run saved. A failure here fails that transaction, whose callers retry
    # it whole or roll back to a savepoint of their own (start_due_held_runs).
    with transaction.atomic(savepoint=False):
        winners = _claim_idempotency_keys(requests, now)
        admitted = _admit(winners, now)
        Run.objects.bulk_create([run for run, _ in admitted if not run.singleton_key])
        for run, admission in admitted:
            if run.singleton_key:
                insert_singleton_run(run, admission.singleton_mode, now)
        queued = [(run, admission) for run, admission in admitted if run.status == RunStatus.QUEUED]
        open_cancel_waits([run for run, _ in queued], now)
        open_start_timeouts([run for run, _ in queued], now)
        _create_first_calls(queued, now)
        skipped = [run for run, _ in admitted if run.status == RunStatus.SKIPPED]
        _report_skipped_invokes(skipped)
        gates.settle_spends_on_commit(
            [spend for run, admission in admitted if run.status != RunStatus.SKIPPED for spend in admission.spends],
            [spend for run, admission in admitted if run.status == RunStatus.SKIPPED for spend in admission.spends],
        )
    for run in skipped:
        metrics.count("inngest_runs_ended", run.function.slug, RunStatus.SKIPPED)
    return [run for run, _ in admitted]


@dataclass(frozen=True)
class RunRows:
    """Runs as CTEs of the statement that inserts their events, with their parameters, and the
    CTEs that return their first calls' ids."""

    ctes: list[str]
    params: dict[str, Any]
    call_ctes: list[str]


def starts_with_its_rows(function: Function) -> bool:
    """Whether a run of the function is created with its rows alone (the run, its event-id key,
    its first call, its cancel and start-timeout waits): no flow control at creation (a hold, a
    limit, a key expression, a singleton)."""
    flow = flow_config_of(function)
    return (not flow.is_deferred and flow.rate_limit is None and flow.throttle is None and flow.singleton is None
            and not flow.idempotency)


def run_rows(requests: list[RunRequest], event_cte: Callable[[Event], str], now: datetime) -> RunRows | None:
    """What create_runs writes for `requests`, as CTEs of one statement with their events
    (`event_cte` names the CTE that returns an event's id): per run its event-id key claimed by
    _CLAIM_KEY, and if it won the key the run, its first call and its cancel and start-timeout
    waits. None when a run needs more than that (starts_with_its_rows): create_runs, in a
    transaction, then."""
    if not all(starts_with_its_rows(req.function) for req in requests):
        return None
    candidates = _first_per_key(requests)
    admitted = _admit([(run_id, req) for _, run_id, req in candidates], now)
    ctes, calls = [], []
    params: dict[str, Any] = {"keys_now": connection.ops.adapt_datetimefield_value(now)}
    for i, ((pair, run_id, req), (run, _)) in enumerate(zip(candidates, admitted)):
        event = sources = event_cte(req.event)  # the run reads FROM its event (and its key, if it has one)
        if pair is not None:
            key = RunIdempotencyKey(function_id=pair[0], key=pair[1], run_id=run_id, expires_at=now + IDEMPOTENCY_TTL)
            sql, key_params = insert_select(key, f"k{i}", f"FROM {sources} {_CLAIM_KEY} RETURNING run_id")
            ctes.append(f"k{i} AS ({sql})")
            params |= key_params
            sources += f", k{i}"
        sql, run_params = insert_select(run, f"r{i}", f"FROM {sources} RETURNING id", {"event_id": f"{event}.id"})
        call_sql, call_params = pending_calls.first_call_cte(f"r{i}", f"c{i}", now)
        ctes += [f"r{i} AS ({sql})", call_sql]
        params |= run_params | call_params
        calls.append(f"c{i}")
        start_timeout = timeout_wait(run, "start", now)
        for j, wait in enumerate(cancel_waits(run, now) + ([start_timeout] if start_timeout else [])):
            sql, wait_params = insert_select(wait, f"w{i}_{j}", f"FROM r{i}", {"run_id": f"r{i}.id"})
            ctes.append(f"w{i}_{j} AS ({sql})")
            params |= wait_params
    return RunRows(ctes, params, calls)


# A fresh key stays with its run; an expired one goes to the new run. In run_rows, RETURNING
# gives a row only when the key is the new run's.
_CLAIM_KEY = (f"ON CONFLICT (function_id, key) DO UPDATE SET run_id = EXCLUDED.run_id, expires_at = EXCLUDED.expires_at "
              f"WHERE {RunIdempotencyKey._meta.db_table}.expires_at < %(keys_now)s")


def _admit(winners: list[tuple[str, RunRequest]], now: datetime) -> list[tuple[Run, gates.Admission]]:
    """Run rows (not saved yet) as flow control admits them: queued, delayed or skipped."""
    taken = _claim_function_idempotency(winners, now)
    admitted = []
    for run_id, req in winners:
        run = Run(id=run_id, function=req.function, event=req.event, events=req.events, created_at=now)
        if run_id in taken:
            admission = gates.Admission(
                is_skipped=True, reason=f"idempotency: run {taken[run_id]} already ran for this key in the last 24h"
            )
        else:
            admission = gates.admit(req.function, req.events, now, _spender(run_id, req))
        if admission.is_skipped:
            run.status, run.flow_action, run.flow_reason, run.ended_at = RunStatus.SKIPPED, FlowAction.SKIPPED, admission.reason, now
        elif admission.is_delayed or req.delay_reason:
            reasons = [text for text in (req.delay_reason, admission.reason) if text]
            run.flow_action, run.flow_reason = FlowAction.DELAYED, "; ".join(reasons)
        run.singleton_key = admission.singleton_key
        gates.record_run_slots(run)
        admitted.append((run, admission))
    return admitted


def _spender(run_id: str, req: RunRequest) -> str:
    """What the run is for, the same on every retry of its creation (a group commit retried
    request by request, a timer row retried alone): its rate-limit and throttle tokens are
    taken once per spender."""
    if req.idempotency_key:
        return f"key:{req.idempotency_key}"
    if req.event is not None and req.event.internal_id:
        return f"event:{req.event.internal_id}"
    return f"run:{run_id}"


def _create_first_calls(queued: list[tuple[Run, gates.Admission]], now: datetime) -> None:
    pending_calls.add_first_calls({run.id: admission.start_at or now for run, admission in queued}, now)


def _claim_idempotency_keys(requests: list[RunRequest], now: datetime) -> list[tuple[str, RunRequest]]:
    """One key row per request (its event id, §6.7); the requests whose row we inserted win a run id.
    A request with no key (its event's id is unique by construction) wins without a row."""
    candidates = _first_per_key(requests)
    wanted = {pair: run_id for pair, run_id, _ in candidates if pair is not None}
    won = _claim_keys(wanted, now) if wanted else {}
    return [(run_id, req) for pair, run_id, req in candidates if pair is None or won.get(pair) == run_id]


def _first_per_key(requests: list[RunRequest]) -> list[tuple[tuple | None, str, RunRequest]]:
    """(function, key) or None, a new run id, the request: within one request the first event
    with a key wins, as it would across requests."""
    candidates: list[tuple[tuple | None, str, RunRequest]] = []
    seen: set[tuple] = set()
    for req in requests:
        pair = (req.function.id, req.idempotency_key) if req.idempotency_key else None
        if pair is not None:
            if pair in seen:
                continue
            seen.add(pair)
        candidates.append((pair, str(ULID()), req))
    return candidates


def _claim_function_idempotency(winners: list[tuple[str, RunRequest]], now: datetime) -> dict[str, str]:
    """The function `idempotency` keys (§6.4): {run id: id of the run that holds its key} for losers."""
    claims: dict[tuple, str] = {}
    losers: dict[str, str] = {}
    pending: dict[str, tuple] = {}
    for run_id, req in winners:
        key = gates.idempotency_key(req.function, req.events)
        if not key:
            continue
        pair = (req.function.id, key)
        if pair in claims:
            losers[run_id] = claims[pair]  # a second event with the same key in one request
            continue
        claims[pair] = run_id
        pending[run_id] = pair
    if claims:
        holders = _claim_keys(claims, now)
        losers.update({run_id: holders.get(pair, "") for run_id, pair in pending.items() if holders.get(pair) != run_id})
    return losers


def _claim_keys(claims: dict[tuple, str], now: datetime) -> dict[tuple, str]:
    """Insert (function, key) → run id rows where none is fresh (_CLAIM_KEY); returns who holds each key now."""
    rows = [RunIdempotencyKey(function_id=fn_id, key=key, run_id=run_id, expires_at=now + IDEMPOTENCY_TTL)
            for (fn_id, key), run_id in claims.items()]
    with connection.cursor() as cursor:
        for start in range(0, len(rows), KEY_CLAIM_BATCH):
            sql, params = insert_values(rows[start:start + KEY_CLAIM_BATCH], "k", _CLAIM_KEY)
            cursor.execute(sql, params | {"keys_now": connection.ops.adapt_datetimefield_value(now)})
    stored = RunIdempotencyKey.objects.filter(key__in=[key for _, key in claims], function_id__in={fn for fn, _ in claims})
    return {(row.function_id, row.key): row.run_id for row in stored if (row.function_id, row.key) in claims}


def insert_singleton_run(run: Run, mode: str, now: datetime) -> None:
    """Insert a singleton run (§6.9): skipped while another run holds its key, or, in cancel mode,
    after cancelling that run. The partial unique index decides between concurrent inserts."""
    from runs.lifecycle import cancel_runs_for_singleton  # lifecycle imports this module

    for _ in range(3):
        if mode == "cancel":
            cancel_runs_for_singleton(run, now)
        try:
            with transaction.atomic():
                run.save(force_insert=True)
            return
        except IntegrityError:
            if mode != "cancel":
                break
    holder = Run.objects.filter(
        function=run.function, singleton_key=run.singleton_key, status__in=ACTIVE_STATUSES
    ).values_list("id", flat=True).first()
    run.status, run.flow_action, run.ended_at = RunStatus.SKIPPED, FlowAction.SKIPPED, now
    run.flow_reason = f"singleton: run {holder or 'another run'} is active for this key"
    run.singleton_key = ""
    run.save(force_insert=True)


def _report_skipped_invokes(runs: list[Run]) -> None:
    """An invoked run that flow control skipped ends its caller's wait with an error (§6.3)."""
    from runs.lifecycle import emit_run_ended  # lifecycle imports this module

    for run in runs:
        if (run.events or [{}])[0].get("name") == INVOKED:
            run.output = {"name": "Error", "message": f"the invoked function was skipped by flow control ({run.flow_reason})"}
            Run.objects.filter(id=run.id).update(output=run.output)
            emit_run_ended(run)


def start_due_held_runs(model: Any, related: str, now: datetime, to_request: Callable[[Any], RunRequest | None],
                        part: str) -> int:
    """Debounces and batches are rows with a due time: take the due ones (SKIP LOCKED, so two
    timer ticks never take the same row), delete them and start their runs, in one transaction.
    If that fails, row by row: a row that cannot start its run must not hold up the others."""
    with transaction.atomic():
        rows = list(
            model.objects.select_for_update(skip_locked=True, of=("self",)).select_related("function", related)
            .filter(due_at__lte=now).order_by("due_at")[:START_BATCH]
        )
        if not rows:
            return 0
        try:
            with transaction.atomic():
                _start_held(model, rows, to_request)
            return len(rows)
        except Exception:  # noqa: BLE001 - rolled back to the savepoint; act_on_each logs the culprit
            return act_on_each(rows, lambda row: _start_held(model, [row], to_request), "due_at", part, now)


def _start_held(model: Any, rows: list, to_request: Callable[[Any], RunRequest | None]) -> int:
    model.objects.filter(pk__in=[row.pk for row in rows]).delete()
    create_runs([req for row in rows if not row.function.is_archived and (req := to_request(row)) is not None])
    return len(rows)


def open_cancel_waits(runs: list[Run], now: datetime) -> None:
    """One cancel wait per entry of the function's `cancel` config (protocol.md §4.7)."""
    Wait.objects.bulk_create([wait for run in runs for wait in cancel_waits(run, now)])


def cancel_waits(run: Run, now: datetime) -> list[Wait]:
    waits = []
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
    return waits


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
