"""A function's flow-control configuration (protocol.md §2, §6), read once into typed values.

The registered JSON stays on the Function as sent; this module validates it at sync (a bad
limit is a registration error, like Inngest's) and gives the runtime frozen dataclasses.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import lru_cache
from typing import Any

from core.durations import DurationError, parse_duration
from core.expressions import ExpressionError, compile_expression

SCOPES = ("fn", "env", "account")
SINGLETON_MODES = ("skip", "cancel")
MAX_STEP_LIMITS = 2
MAX_PRIORITY_SECONDS = 43_200  # §6.8: the Go server clamps to ±12 h
MAX_RATE_PERIOD = timedelta(hours=24)
MIN_DEBOUNCE, MAX_DEBOUNCE = timedelta(seconds=1), timedelta(days=7)


class FlowConfigError(ValueError):
    pass


@dataclass(frozen=True)
class ConcurrencyLimit:
    limit: int
    key: str = ""  # CEL over the event; "" = one queue for the scope
    scope: str = "fn"
    # The `{"fn": [...]}` form: a slot held from the run's start to its end (limits runs, not calls).
    is_per_run: bool = False


@dataclass(frozen=True)
class RateSpec:
    """`rateLimit` and `throttle`: `limit` per `period` per evaluated `key`."""

    limit: int
    period: timedelta
    burst: int = 0
    key: str = ""


@dataclass(frozen=True)
class DebounceSpec:
    period: timedelta
    key: str = ""
    timeout: timedelta | None = None


@dataclass(frozen=True)
class BatchSpec:
    max_size: int
    timeout: timedelta
    key: str = ""
    condition: str = ""  # `if`: events for which it is false run on their own at once


@dataclass(frozen=True)
class SingletonSpec:
    mode: str
    key: str = ""


@dataclass(frozen=True)
class FlowConfig:
    concurrency: tuple[ConcurrencyLimit, ...] = ()
    throttle: RateSpec | None = None
    rate_limit: RateSpec | None = None
    idempotency: str = ""
    debounce: DebounceSpec | None = None
    batch: BatchSpec | None = None
    singleton: SingletonSpec | None = None
    priority: str = ""

    @property
    def is_deferred(self) -> bool:
        """Whether events wait (debounce, batch) before a run exists."""
        return self.debounce is not None or self.batch is not None


NO_FLOW_CONTROL = FlowConfig()


def read_flow_config(config: dict[str, Any]) -> FlowConfig:
    """Validate and read the flow-control keys of a (key-normalised) function config."""
    flow = FlowConfig(
        concurrency=_concurrency(config.get("concurrency")),
        throttle=_rate(config.get("throttle"), "throttle", burst_default=0),
        rate_limit=_rate(config.get("rateLimit"), "rateLimit", burst_default=None),
        idempotency=_expression(config.get("idempotency"), "idempotency"),
        debounce=_debounce(config.get("debounce")),
        batch=_batch(config.get("batchEvents")),
        singleton=_singleton(config.get("singleton")),
        priority=_expression(_fields(config.get("priority")).get("run"), "priority.run"),
    )
    if flow.batch is not None:
        clashes = {"cancel": bool(config.get("cancel")), "debounce": flow.debounce is not None,
                   "singleton": flow.singleton is not None, "priority.run": bool(flow.priority)}
        for name, clash in clashes.items():
            if clash:
                raise FlowConfigError(f"batchEvents cannot be combined with {name}")
    if flow.idempotency:
        # §2: idempotency (one run per key per 24 h) overrides rateLimit. It is kept apart from
        # the rate limiter: its keys are rows in PostgreSQL, so they survive a Redis flush.
        flow = replace(flow, rate_limit=None)
    return flow


@lru_cache(maxsize=2048)
def _cached(function_id: Any, version: int, config_json: str) -> FlowConfig:
    try:
        return read_flow_config(json.loads(config_json))
    except FlowConfigError:
        return NO_FLOW_CONTROL  # refused at sync; a stale row must not break execution


def flow_config_of(function: Any) -> FlowConfig:
    """The function's flow config, read once per (function, version)."""
    config = function.config or {}
    if not any(config.get(k) for k in _FLOW_KEYS):
        return NO_FLOW_CONTROL
    return _cached(function.id, function.version, json.dumps(config, sort_keys=True))


def starts_when_claimed(config: dict[str, Any]) -> bool:
    """Whether a queued run of a function with this config starts as soon as a worker claims its
    first call: nothing has to be taken or switched first, no concurrency slot and no timeout."""
    if config.get("timeouts"):
        return False
    try:
        return not read_flow_config(config).concurrency
    except FlowConfigError:
        return False


_FLOW_KEYS = ("concurrency", "throttle", "rateLimit", "idempotency", "debounce", "batchEvents", "singleton", "priority")


def clamp_priority(value: Any) -> int:
    """A priority expression's result as whole seconds within ±12 h; anything else is 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    return max(-MAX_PRIORITY_SECONDS, min(MAX_PRIORITY_SECONDS, int(value)))


# --- readers ---------------------------------------------------------------------------------

def _fields(raw: Any) -> dict[str, Any]:
    """A dict with lower-cased keys (Go decodes JSON keys case-insensitively; SDKs differ)."""
    if not isinstance(raw, dict):
        return {}
    return {str(key).lower(): value for key, value in raw.items() if value is not None}


def _concurrency(raw: Any) -> tuple[ConcurrencyLimit, ...]:
    if raw is None or raw == []:
        return ()
    if isinstance(raw, bool):
        raise FlowConfigError("concurrency must be a number, an object or a list")
    if isinstance(raw, (int, float)):
        return (ConcurrencyLimit(limit=_positive_int(raw, "concurrency")),) if raw > 0 else ()
    if isinstance(raw, dict) and {k.lower() for k in raw} & {"fn", "step"}:
        fields = _fields(raw)
        per_run = [_limit(item, is_per_run=True) for item in _items(fields.get("fn"))]
        if len(per_run) > 1:
            raise FlowConfigError("concurrency.fn takes at most one limit")
        return (*_step_limits(_items(fields.get("step"))), *per_run)
    return _step_limits(_items(raw))


def _step_limits(items: list) -> tuple[ConcurrencyLimit, ...]:
    limits = tuple(_limit(item) for item in items)
    if len(limits) > MAX_STEP_LIMITS:
        raise FlowConfigError(f"concurrency takes at most {MAX_STEP_LIMITS} limits")
    return tuple(limit for limit in limits if limit.limit > 0)


def _items(raw: Any) -> list:
    if raw is None:
        return []
    return raw if isinstance(raw, list) else [raw]


def _limit(raw: Any, is_per_run: bool = False) -> ConcurrencyLimit:
    fields = _fields(raw)
    if not fields:
        raise FlowConfigError("each concurrency limit must be an object with a limit")
    scope = str(fields.get("scope") or "fn").lower()
    if scope not in SCOPES:
        raise FlowConfigError(f"concurrency scope must be one of {', '.join(SCOPES)}, not {scope!r}")
    key = _expression(fields.get("key"), "concurrency.key")
    if scope != "fn" and not key:
        raise FlowConfigError(f"concurrency with scope {scope!r} needs a key")
    limit = fields.get("limit", 0)
    limit = 0 if limit == 0 else _positive_int(limit, "concurrency.limit")
    return ConcurrencyLimit(limit=limit, key=key, scope=scope, is_per_run=is_per_run)


def _rate(raw: Any, name: str, burst_default: int | None) -> RateSpec | None:
    fields = _fields(raw)
    if not fields:
        return None
    period = _duration(fields.get("period"), f"{name}.period")
    if period < timedelta(seconds=1) or (name == "rateLimit" and period > MAX_RATE_PERIOD):
        raise FlowConfigError(f"{name}.period must be between 1s and 24h")
    limit = fields.get("limit")
    if name == "throttle" and limit == 0:
        limit = 1  # §2: a throttle limit of 0 means 1
    limit = _positive_int(limit, f"{name}.limit")
    # §6.3: rate limiting allows a burst of a tenth of the limit; throttle takes it from the config.
    burst = limit // 10 if burst_default is None else _non_negative_int(fields.get("burst", burst_default), f"{name}.burst")
    return RateSpec(limit=limit, period=period, burst=burst, key=_expression(fields.get("key"), f"{name}.key"))


def _debounce(raw: Any) -> DebounceSpec | None:
    fields = _fields(raw)
    if not fields:
        return None
    period = _duration(fields.get("period"), "debounce.period")
    if not MIN_DEBOUNCE <= period <= MAX_DEBOUNCE:
        raise FlowConfigError("debounce.period must be between 1s and 7d")
    timeout = _duration(fields["timeout"], "debounce.timeout") if fields.get("timeout") else None
    return DebounceSpec(period=period, key=_expression(fields.get("key"), "debounce.key"), timeout=timeout)


def _batch(raw: Any) -> BatchSpec | None:
    fields = _fields(raw)
    if not fields:
        return None
    max_size = _positive_int(fields.get("maxsize"), "batchEvents.maxSize")
    if max_size < 2:
        return None  # §2: a batch of one is no batching
    timeout = _duration(fields.get("timeout"), "batchEvents.timeout")
    if timeout < timedelta(seconds=1):
        raise FlowConfigError("batchEvents.timeout must be at least 1s")
    return BatchSpec(max_size=max_size, timeout=timeout, key=_expression(fields.get("key"), "batchEvents.key"),
                     condition=_expression(fields.get("if"), "batchEvents.if"))


def _singleton(raw: Any) -> SingletonSpec | None:
    fields = _fields(raw)
    if not fields:
        return None
    mode = str(fields.get("mode") or "").lower()
    if mode not in SINGLETON_MODES:
        raise FlowConfigError(f"singleton.mode must be skip or cancel, not {mode!r}")
    return SingletonSpec(mode=mode, key=_expression(fields.get("key"), "singleton.key"))


def _expression(raw: Any, name: str) -> str:
    if raw in (None, ""):
        return ""
    if not isinstance(raw, str):
        raise FlowConfigError(f"{name} must be an expression string")
    try:
        compile_expression(raw)
    except ExpressionError as exc:
        raise FlowConfigError(f"{name}: {exc}") from None
    return raw


def _duration(raw: Any, name: str) -> timedelta:
    if not isinstance(raw, str) or not raw:
        raise FlowConfigError(f"{name} must be a time string such as '10s'")
    try:
        return parse_duration(raw)
    except DurationError as exc:
        raise FlowConfigError(f"{name}: {exc}") from None


def _positive_int(raw: Any, name: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or raw < 1 or raw != int(raw):
        raise FlowConfigError(f"{name} must be a positive whole number, not {raw!r}")
    return int(raw)


def _non_negative_int(raw: Any, name: str) -> int:
    if raw == 0:
        return 0
    return _positive_int(raw, name)
