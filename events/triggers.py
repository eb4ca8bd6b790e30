"""Which functions an event starts: exact names, wildcards and the trigger's expression (§2)."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

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


# --- the triggers of an event name, remembered by the process ------------------------------
#
# A copy of the triggers (with their functions) an event name matches, and a digest of those
# rows as PostgreSQL had them. It is never trusted on its own: a statement that uses it checks,
# as it writes, that the digest of the rows is still the same (`digest_sql`), and writes nothing
# otherwise; a sync, an archived function, any change to one of those rows changes the digest.
# So a copy another process made stale costs that statement, never a missed trigger.

MAX_CACHED_NAMES = 1_000


@dataclass(frozen=True)
class NameTriggers:
    """The triggers an event name matches (each with its function) and the digest of their rows."""

    digest: str
    triggers: list[Trigger]


_by_name: dict[str, NameTriggers] = {}


def digest_sql(placeholders: list[str]) -> str:
    """An SQL expression: the digest of every column of the triggers (of active functions) whose
    names are among the placeholders' patterns, and of their functions' rows."""
    return (f"(SELECT md5(coalesce(string_agg(t::text || f::text, ',' ORDER BY t.id), '')) FROM {Trigger._meta.db_table} t "
            f"JOIN {Function._meta.db_table} f ON f.id = t.function_id AND NOT f.is_archived "
            f"WHERE t.event_name IN ({', '.join(placeholders)}))")


def remembered_triggers(names: list[str]) -> dict[str, NameTriggers]:
    """What this process remembers of these names (to check with digest_sql before use)."""
    return {name: entry for name in names if (entry := _by_name.get(name)) is not None}


def remember_triggers(entries: dict[str, NameTriggers]) -> None:
    if len(_by_name) + len(entries) > MAX_CACHED_NAMES:
        _by_name.clear()  # names are few; a process that sees many only reads more often
    _by_name.update(entries)


def forget_triggers(names: list[str]) -> None:
    for name in names:
        _by_name.pop(name, None)
