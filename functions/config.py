"""Reading a sync request (protocol.md §1.7, §2): keys matched case-insensitively, functions validated.

Go's JSON decoding ignores key case, and the SDKs rely on it (Python sends `appname`), so every
known key is mapped to its canonical spelling before anything reads it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

from core.durations import DurationError, parse_duration, parse_instant
from core.expressions import ExpressionError, compile_expression
from functions.cron import CronError, parse_cron
from functions.expression_failures import cancel_field, trigger_field
from functions.flow_config import FlowConfig, FlowConfigError, read_flow_config


REQUEST_KEYS = (
    "url", "v", "deployType", "sdk", "framework", "appName", "appVersion", "functions",
    "capabilities", "headers", "idempotencyKey", "featureObservations",
)
FUNCTION_KEYS = (
    "id", "name", "triggers", "steps", "retries", "concurrency", "rateLimit", "throttle", "debounce",
    "batchEvents", "cancel", "priority", "idempotency", "timeouts", "singleton", "checkpoint",
)
TRIGGER_KEYS = ("event", "expression", "cron", "jitter")
STEP_KEYS = ("id", "name", "runtime", "retries")
RUNTIME_KEYS = ("type", "url")
RETRIES_KEYS = ("attempts",)
DEFAULT_RETRIES = 4
MAX_RETRIES = 20
MAX_TRIGGERS = 10
MAX_NAME_LENGTH = 255  # app names, function ids and names: the columns' length


class ConfigError(ValueError):
    pass


def canonical_keys(raw: Any, known: tuple[str, ...]) -> dict[str, Any]:
    """A copy of `raw` with known keys in their canonical case; an exact match wins."""
    if not isinstance(raw, dict):
        return {}
    by_lower = {key.lower(): key for key in known}
    result: dict[str, Any] = {}
    for key, value in raw.items():
        canonical = by_lower.get(key.lower(), key)
        if canonical in result and key != canonical:
            continue
        result[canonical] = value
    return result


@dataclass(frozen=True)
class TriggerSpec:
    event: str = ""
    expression: str = ""
    cron: str = ""


@dataclass(frozen=True)
class FunctionSpec:
    slug: str
    name: str
    url: str
    retries: int
    triggers: tuple[TriggerSpec, ...]
    config: dict[str, Any]


def read_function(raw: Any) -> FunctionSpec:
    """Validate one function config; ConfigError names the function and the problem."""
    config = canonical_keys(raw, FUNCTION_KEYS)
    name = config.get("name") if isinstance(config.get("name"), str) else ""
    slug = config.get("id") if isinstance(config.get("id"), str) else ""
    slug = slug or _slugify(name)
    if not name:
        raise ConfigError(f"Function '{slug}' has no name")
    if not slug:
        raise ConfigError("A function has neither an id nor a name")
    if len(slug) > MAX_NAME_LENGTH or len(name) > MAX_NAME_LENGTH:
        raise ConfigError(f"Function '{slug[:MAX_NAME_LENGTH]}' has an id or a name longer than {MAX_NAME_LENGTH} characters")
    step = _read_step(config, name)
    triggers = tuple(_read_trigger(t, name) for t in _list(config.get("triggers")))
    if len(triggers) > MAX_TRIGGERS:
        raise ConfigError(f"Function '{name}' has more than {MAX_TRIGGERS} triggers")
    if len(set(triggers)) != len(triggers):
        raise ConfigError(f"Function '{name}' has duplicate triggers")
    try:
        _check_batch_size(read_flow_config(config))
        _check_cancel(config.get("cancel"))
        _check_timeouts(config.get("timeouts"))
    except (FlowConfigError, DurationError, ExpressionError) as exc:
        raise ConfigError(f"Function '{name}' has an invalid configuration: {exc}") from None
    config["triggers"] = [_trigger_json(t) for t in triggers]
    config["steps"] = {"step": step}
    return FunctionSpec(slug, name, step["runtime"]["url"], _read_retries(config, step), triggers, config)


def _read_step(config: dict, name: str) -> dict:
    steps = config.get("steps")
    if not isinstance(steps, dict) or len(steps) != 1:
        raise ConfigError(f"Function '{name}' must have exactly one step")
    step = canonical_keys(next(iter(steps.values())), STEP_KEYS)
    runtime = canonical_keys(step.get("runtime"), RUNTIME_KEYS)
    url = runtime.get("url")
    if not isinstance(url, str) or not url:
        raise ConfigError(f"No SDK URL provided for function '{name}'")
    if urlsplit(url).scheme not in ("http", "https"):
        raise ConfigError(f"Function '{name}' has a step URL that is not http or https: {url}")
    step["runtime"] = runtime
    step["retries"] = canonical_keys(step.get("retries"), RETRIES_KEYS)
    return step


def _read_retries(config: dict, step: dict) -> int:
    attempts = step["retries"].get("attempts")
    if attempts is None:
        attempts = config.get("retries")
    if isinstance(attempts, dict):
        attempts = canonical_keys(attempts, RETRIES_KEYS).get("attempts")
    if attempts is None:
        return DEFAULT_RETRIES
    if isinstance(attempts, bool) or not isinstance(attempts, (int, float)) or attempts < 0:
        raise ConfigError(f"Function '{config.get('name')}' has an invalid retry count: {attempts!r}")
    return min(int(attempts), MAX_RETRIES)


def _read_trigger(raw: Any, name: str) -> TriggerSpec:
    trigger = canonical_keys(raw, TRIGGER_KEYS)
    event, cron = trigger.get("event") or "", trigger.get("cron") or ""
    expression = trigger.get("expression") or ""
    if bool(event) == bool(cron):
        raise ConfigError(f"Function '{name}' has a trigger that needs exactly one of event or cron")
    if not all(isinstance(v, str) for v in (event, cron, expression)):
        raise ConfigError(f"Function '{name}' has a trigger with a non-string field")
    if len(event) > 255 or len(cron) > 255:
        raise ConfigError(f"Function '{name}' has a trigger longer than 255 characters")
    if cron:
        try:
            parse_cron(cron)
        except CronError as exc:
            raise ConfigError(f"Function '{name}' has an invalid cron trigger: {exc}") from None
    if expression:
        try:
            compile_expression(expression)
        except ExpressionError as exc:
            raise ConfigError(f"Function '{name}' has an invalid {trigger_field(event)}: {exc}") from None
    return TriggerSpec(event=event, expression=expression, cron=cron)


def _check_batch_size(flow: FlowConfig) -> None:
    if flow.batch is not None and flow.batch.max_size > settings.INNGEST_MAX_BATCH_SIZE:
        raise FlowConfigError(f"batchEvents.maxSize must be at most {settings.INNGEST_MAX_BATCH_SIZE}, not {flow.batch.max_size}")


def _check_cancel(raw: Any) -> None:
    """`cancel`: a list of `{event, if?, timeout?}` (§2), read as runs start (runs/creation.py)."""
    if raw is None:
        return
    if not isinstance(raw, list):
        raise FlowConfigError("cancel must be a list")
    for entry in raw:
        if not isinstance(entry, dict) or not isinstance(entry.get("event"), str) or not entry["event"]:
            raise FlowConfigError("each cancel needs an event name")
        if len(entry["event"]) > MAX_NAME_LENGTH:
            raise FlowConfigError(f"cancel event names are at most {MAX_NAME_LENGTH} characters")
        if entry.get("if") not in (None, ""):
            if not isinstance(entry["if"], str):
                raise FlowConfigError("cancel if must be an expression string")
            try:
                compile_expression(entry["if"])
            except ExpressionError as exc:
                raise FlowConfigError(f"{cancel_field(entry['event'])}: {exc}") from None
        timeout = entry.get("timeout")
        if timeout not in (None, "") and (not isinstance(timeout, str) or parse_instant(timeout) is None):
            parse_duration(str(timeout))


def _check_timeouts(raw: Any) -> None:
    """`timeouts`: `{start?, finish?}` time strings (§2), read as runs start and end."""
    if raw is None:
        return
    if not isinstance(raw, dict):
        raise FlowConfigError("timeouts must be an object")
    for which in ("start", "finish"):
        if raw.get(which) not in (None, ""):
            parse_duration(str(raw[which]))


def _trigger_json(trigger: TriggerSpec) -> dict[str, str]:
    return {key: value for key, value in trigger.__dict__.items() if value}


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _slugify(name: str) -> str:
    return "-".join("".join(c.lower() if c.isalnum() else " " for c in name).split())
