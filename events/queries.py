"""Finding events: by name, exact or with wildcards (`app/*`, `app/user.*`, `*.created`), with or
without the server's own `inngest/…` events, a page at a time (the UI's event stream)."""
from __future__ import annotations

import re

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.db.models import Q

INTERNAL_PREFIX = "inngest/"  # events the server emits itself: function.finished, failed, ...


def name_matches(field: str, pattern: str) -> Q:
    """`field` equal to `pattern`, or matching it with `*` standing for any characters (a single
    trailing `*` is LIKE 'app/%'). An exact name and a leading fixed part (`app/*`, `app/*.done`)
    are index ranges on PostgreSQL (the event name index's pattern operator class); a leading `*`
    scans."""
    if "*" not in pattern:
        return Q(**{field: pattern})
    head, star, tail = pattern.partition("*")
    if not tail:
        return Q(**{f"{field}__startswith": head})
    regex = "^" + ".*".join(re.escape(part) for part in pattern.split("*")) + "$"
    return Q(**{f"{field}__regex": regex})


def internal_names(field: str = "name") -> Q:
    """The server's own events (`inngest/…`), hidden from the stream unless asked for."""
    return Q(**{f"{field}__startswith": INTERNAL_PREFIX})


@dataclass(frozen=True)
class EventFilter:
    name: str = ""  # exact, or with `*` wildcards
    internal: bool = False  # show the server's own inngest/* events too
    before: str = ""  # the cursor: events older than this internal id

    @classmethod
    def from_query(cls, query: Any) -> "EventFilter":
        return cls(name=str(query.get("name", "")).strip(), internal=query.get("internal") in ("1", "on", "true"),
                   before=str(query.get("before", "")).strip())

    def apply(self, events: Any) -> Any:
        if self.name:
            events = events.filter(name_matches("name", self.name))
        elif not self.internal:
            events = events.exclude(internal_names())
        if self.before:
            events = events.filter(internal_id__lt=self.before)
        return events

    def query_string(self, before: str = "") -> str:
        params = {"name": self.name, "internal": "1" if self.internal else "", "before": before}
        return urlencode({k: v for k, v in params.items() if v})
