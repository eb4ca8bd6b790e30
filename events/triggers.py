"""Which functions an event starts: exact names, wildcards and the trigger's expression (§2)."""
from __future__ import annotations

from collections import defaultdict

from functions.expression_failures import expression_holds, trigger_field
from functions.models import Function, Trigger


def name_patterns(name: str) -> list[str]:
    """The trigger names that match `name`: itself, and a `*` after each `/` or `.` in it."""
    patterns = [name]
    for index, char in enumerate(name):
        if char in "/.":
            patterns.append(name[: index + 1] + "*")
    return patterns


def match_functions(payloads: list[dict]) -> list[list[Function]]:
    """For each event payload, the active functions it triggers (each at most once)."""
    wanted = {pattern for payload in payloads for pattern in name_patterns(payload["name"])}
    triggers = []
    if wanted:
        triggers = list(Trigger.objects.filter(event_name__in=wanted, function__is_archived=False).select_related("function"))
    return functions_matching(payloads, triggers)


def functions_matching(payloads: list[dict], triggers: list[Trigger]) -> list[list[Function]]:
    """For each event payload, the functions it triggers among `triggers` (those of active
    functions whose names match the payloads' patterns, each with its function)."""
    triggers_by_pattern: dict[str, list[Trigger]] = defaultdict(list)
    for trigger in triggers:
        triggers_by_pattern[trigger.event_name].append(trigger)
    return [_functions_for(payload, name_patterns(payload["name"]), triggers_by_pattern) for payload in payloads]


def _functions_for(payload: dict, patterns: list[str], triggers_by_pattern: dict[str, list[Trigger]]) -> list[Function]:
    matched: dict[str, Function] = {}
    for pattern in patterns:
        for trigger in triggers_by_pattern.get(pattern, ()):
            if trigger.function_id in matched:
                continue
            if trigger.expression and not expression_holds(trigger.expression, trigger.function_id,
                                                           trigger_field(trigger.event_name), payload):
                continue
            matched[trigger.function_id] = trigger.function
    return list(matched.values())
