"""Finding events by name: exact names and wildcards (`app/*`, `app/user.*`, `*.created`), as the
UI's filters write them."""
from __future__ import annotations

import re

from django.db.models import Q

INTERNAL_PREFIX = "inngest/"  # events the server emits itself: function.finished, failed, ...


def name_matches(field: str, pattern: str) -> Q:
    """`field` equal to `pattern`, or matching it with `*` standing for any characters. A single
    trailing `*` is a prefix (LIKE 'app/%', which the name indexes serve)."""
    if "*" not in pattern:
        return Q(**{field: pattern})
    head, star, tail = pattern.partition("*")
    if not tail:
        return Q(**{f"{field}__startswith": head})
    regex = "^" + ".*".join(re.escape(part) for part in pattern.split("*")) + "$"
    return Q(**{f"{field}__regex": regex})


def internal(field: str = "name") -> Q:
    """The server's own events (`inngest/…`), hidden from the stream unless asked for."""
    return Q(**{f"{field}__startswith": INTERNAL_PREFIX})

