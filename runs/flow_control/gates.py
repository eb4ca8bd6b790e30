"""Flow control (protocol.md §6): whether a run may exist, when it may start, and when its calls may run.

Two gates, in Inngest's order:
- at creation, `admit`: rate limit, then singleton, then throttle (idempotency keys are claimed
  with the event-id keys in `runs.creation`; debounce and batching hold events before this,
  in `runs.flow_control.debounces` and `runs.flow_control.batches`);
- at every claimed call, the concurrency slots: `take_slots` before the SDK call, `give_back`
  after it. A call that finds no free slot is parked in line and woken when one frees.

Counters live in Redis (`runs.flow_control.counters`); every decision that affects a run is written on
its row (`flow_action`, `flow_reason`) so the REST API and the admin say why.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from functions.expression_failures import expression_value
from functions.flow_config import NO_FLOW_CONTROL, ConcurrencyLimit, RateSpec, clamp_priority, flow_config_of
from runs import pending_calls
from runs.flow_control.counters import PER_RUN_HOLDER, PREFIX, Slot, Spend, counters
from runs.models import FlowAction, Run

log = logging.getLogger(__name__)

# A parked call is looked at again after this long even if no wake-up comes (lost message,
# Redis restarted without its data); a wake-up normally comes much sooner.
PARK_RECHECK = timedelta(seconds=60)
# A `concurrency.fn` slot is held by the run, not a call; it is renewed by every call of the run.
PER_RUN_SLOT_TTL = timedelta(days=1)
INVALID_KEY = "<invalid>"  # §6.5: a key that cannot be evaluated still gets a (shared) key
_KEY_FIELDS = {"rl": "rateLimit.key", "th": "throttle.key"}


@dataclass(frozen=True)
class Admission:
    """What flow control decided for a new run."""

    is_skipped: bool = False
    reason: str = ""
    start_at: datetime | None = None  # later than now when a throttle delays it
    singleton_key: str = ""
    singleton_mode: str = ""
    spends: tuple[Spend, ...] = ()  # the rate-limit and throttle tokens it took, to confirm on commit

    @property
    def is_delayed(self) -> bool:
        return self.start_at is not None


ADMITTED = Admission()


def evaluate_key(expression: str, event: dict, function_id: Any, field: str) -> Any:
    """The evaluated key expression, or INVALID_KEY when it cannot be evaluated (recorded on the
    function as its `field`'s failure)."""
    return expression_value(expression, function_id, field, event, INVALID_KEY)


def digest(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


# --- at creation -----------------------------------------------------------------------------

def idempotency_key(function: Any, events: list[dict]) -> str:
    """The run-idempotency key from the function's `idempotency` expression, "" when it has none."""
    expression = flow_config_of(function).idempotency
    if not expression:
        return ""
    value = evaluate_key(expression, events[0] if events else {}, function.id, "idempotency")
    if value in (None, "", False):
        return ""
    return f"idempotency:{digest(value)}"


def admit(function: Any, events: list[dict], now: datetime, spender: str) -> Admission:
    """Rate limit (skip), singleton (its key; the database arbitrates), throttle (a later start).
    `spender` names what the run is for (an event, a batch): the same on every retry of this
    admission, so a retry takes no second token."""
    flow = flow_config_of(function)
    if flow is NO_FLOW_CONTROL:
        return ADMITTED
    event = events[0] if events else {}
    spends: list[Spend] = []
    if flow.rate_limit is not None and not _within_rate(function, flow.rate_limit, event, now, spender, spends):
        spec = flow.rate_limit
        return Admission(is_skipped=True, reason=f"rate limit: more than {spec.limit} runs per {_span(spec.period)}{_for_key(spec.key, event)}")
    singleton_key, singleton_mode = "", ""
    if flow.singleton is not None:
        value = evaluate_key(flow.singleton.key, event, function.id, "singleton.key") if flow.singleton.key else ""
        if value is not False:  # §6.9: a key evaluating to false means "not a singleton"
            singleton_key, singleton_mode = digest(value), flow.singleton.mode
    start_at, reason = None, ""
    if flow.throttle is not None:
        delay_ms = _reserve_start(function, flow.throttle, event, now, spender, spends)
        if delay_ms > 0:
            start_at = now + timedelta(milliseconds=delay_ms)
            spec = flow.throttle
            reason = f"throttle: {spec.limit} starts per {_span(spec.period)}{_for_key(spec.key, event)}; starts at {start_at.isoformat()}"
    return Admission(reason=reason, start_at=start_at, singleton_key=singleton_key, singleton_mode=singleton_mode,
                     spends=tuple(spends))


def _rate_key(kind: str, function: Any, spec: RateSpec, event: dict) -> str | None:
    value = evaluate_key(spec.key, event, function.id, _KEY_FIELDS[kind]) if spec.key else ""
    if value is False:
        return None  # §6.3: a key evaluating to false is not limited
    return f"{PREFIX}{kind}:{function.id}:{digest(value)}"


def _gcra_args(spec: RateSpec) -> tuple[int, int]:
    emission = max(1, int(spec.period.total_seconds() * 1000) // spec.limit)
    return emission, emission * spec.burst


def _within_rate(function: Any, spec: RateSpec, event: dict, now: datetime, spender: str, spends: list[Spend]) -> bool:
    key = _rate_key("rl", function, spec, event)
    if key is None:
        return True
    emission, tolerance = _gcra_args(spec)
    spend = Spend(key, spender, emission)
    if not counters().allow_rate(spend, tolerance, _ms(now), _confirm_window_ms()):
        return False
    spends.append(spend)
    return True


def _reserve_start(function: Any, spec: RateSpec, event: dict, now: datetime, spender: str, spends: list[Spend]) -> int:
    key = _rate_key("th", function, spec, event)
    if key is None:
        return 0
    emission, tolerance = _gcra_args(spec)
    spend = Spend(key, spender, emission)
    spends.append(spend)
    return counters().reserve_start(spend, tolerance, _ms(now), _confirm_window_ms())


def _confirm_window_ms() -> int:
    return int(settings.INNGEST_UNCONFIRMED_TOKEN_SECONDS * 1000)


def settle_spends_on_commit(kept: list[Spend], returned: list[Spend]) -> None:
    """Once the admitting transaction commits, the tokens of the runs it created stay spent and
    those of runs skipped after all (a singleton) come back. If it rolls back, nothing is
    confirmed: the tokens come back by themselves after the window, unless a retry of the same
    admission takes them over first."""
    if kept or returned:
        transaction.on_commit(lambda: _settle(kept, returned))


def _settle(kept: list[Spend], returned: list[Spend]) -> None:
    try:
        counters().confirm(kept)
        counters().refund(returned, _ms(timezone.now()))
    except Exception:  # noqa: BLE001 - the runs are committed; an unconfirmed token only comes back early
        log.warning("confirming %d rate-limit or throttle tokens failed", len(kept) + len(returned), exc_info=True)


def _span(period: timedelta) -> str:
    seconds = int(period.total_seconds())
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _for_key(expression: str, event: dict) -> str:
    # Not recorded again: this is the key just evaluated for the limit, repeated in the reason.
    return f" for key {evaluate_key(expression, event, None, '')!r}" if expression else ""


# --- at every call: concurrency ----------------------------------------------------------------

def slots_for(run: Any, call_id: int, lease_seconds: float) -> list[Slot]:
    """The concurrency slots a call of this run must hold while it runs (none for most functions):
    the call-level limits of the function as it is now, then the run-level ones the run was
    created with (`run_slots`)."""
    event = (run.events or [{}])[0]
    slots = []
    for limit in flow_config_of(run.function).concurrency:
        if not limit.is_per_run:
            key, size, label = _slot_key(run.function_id, limit, event)
            slots.append(Slot(key, size, str(call_id), int(lease_seconds * 1000), label))
    return slots + run_level_slots(run)


def record_run_slots(run: Any) -> None:
    """Evaluate the run-level limits once, at creation; the run holds these keys until its end."""
    event = (run.events or [{}])[0]
    run.run_slots = [
        dict(zip(("key", "limit", "label"), _slot_key(run.function_id, limit, event)))
        for limit in flow_config_of(run.function).concurrency if limit.is_per_run
    ]


def run_level_slots(run: Any) -> list[Slot]:
    """The run-level slots the run holds from its first call to its end."""
    if run.run_slots is None:  # created before they were recorded: the function as it is now
        record_run_slots(run)
    ttl_ms = int(PER_RUN_SLOT_TTL.total_seconds() * 1000)
    return [Slot(slot["key"], slot["limit"], f"{PER_RUN_HOLDER}{run.id}", ttl_ms, slot["label"]) for slot in run.run_slots]


def _slot_key(function_id: Any, limit: ConcurrencyLimit, event: dict) -> tuple[str, int, str]:
    """(counter key, size, the limit in words) of one limit for the run's event."""
    value = evaluate_key(limit.key, event, function_id, "concurrency.key") if limit.key else ""
    scope_id = str(function_id) if limit.scope == "fn" else limit.scope
    key = f"{PREFIX}{'cr' if limit.is_per_run else 'cc'}:{scope_id}:{digest(value)}"
    return key, limit.limit, f"{limit.limit} at once" + (f" for key {value!r}" if limit.key else "")


def call_score(run: Any) -> int:
    """A call's place in line: older runs first, moved ahead by `priority.run` seconds (§6.8)."""
    expression = flow_config_of(run.function).priority
    event = (run.events or [{}])[0]
    factor = clamp_priority(evaluate_key(expression, event, run.function_id, "priority.run")) if expression else 0
    return _ms(run.created_at) - factor * 1000


def line_member(call_id: int) -> str:
    return f"{call_id:012d}"  # fixed width: equal scores fall back to call order


def take_slots(call: Any, slots: list[Slot]) -> Slot | None:
    """Take every slot the call needs, or none; returns the full one the call must wait on."""
    return counters().acquire(slots, line_member(call.id), call_score(call.run), _ms(timezone.now()))


def park(call: Any, owner: str, full: Slot) -> None:
    """Put a call that found no free slot back, waiting in line; the run says why."""
    now = timezone.now()
    pending_calls.park_call(call, owner, full.key, now + PARK_RECHECK, now)
    run = call.run
    reason = f"concurrency: {full.label}; waited for a free slot"
    if (run.flow_action, run.flow_reason) != (FlowAction.DELAYED, reason):
        Run.objects.filter(id=run.id).update(flow_action=FlowAction.DELAYED, flow_reason=reason)
    # A slot freed between our attempt and the park found nobody parked to wake: look once more.
    wake(counters().heads([full], _ms(timezone.now())), [full])


def give_back(slots: list[Slot]) -> None:
    """Release the slots and wake whoever is at the head of their lines."""
    if slots:
        wake(counters().release(slots, _ms(timezone.now())), slots)


def wake(members: list[str], slots: list[Slot]) -> None:
    """Send the parked calls among `members`; drop from the lines those whose run is gone."""
    if not members:
        return
    ids = [int(m) for m in members]
    existing = pending_calls.parked_lines(ids)
    gone = [line_member(i) for i in ids if i not in existing]
    counters().leave_line(slots, gone)
    parked = [i for i, key in existing.items() if key]
    if parked:
        pending_calls.wake_parked_calls(parked)
    if gone:
        # Waiters behind the departed ones may now be at the head of the line.
        heads = [m for slot in slots for m in counters().line(slot, slot.limit)]
        if heads and set(heads) - set(gone):
            wake([m for m in dict.fromkeys(heads) if m not in gone], [])


def release_run_slots(run: Any) -> None:
    """A finished run gives back its `concurrency.fn` slots (limits on whole runs), under the
    keys it took them with."""
    slots = run_level_slots(run)
    try:
        give_back(slots)
    except Exception:  # noqa: BLE001 - the slot expires by itself; a Redis blip must not fail the run's end
        log.warning("run %s: releasing its run-level concurrency slots failed", run.id, exc_info=True)
