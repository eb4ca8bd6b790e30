"""Inngest time strings: Go durations plus `d` and `w` ("300ms", "1h30m", "2d", "1w"), and dates."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

_UNITS = {
    "ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0,
    "d": 86400.0, "w": 604800.0,
}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d|w)")
# Go's longest duration (int64 nanoseconds, about 292 years), which Inngest's parser keeps to: a
# due time this far ahead is still a date Python can hold.
MAX_DURATION = timedelta(microseconds=(2**63 - 1) // 1000)


class DurationError(ValueError):
    pass


def parse_duration(text: str) -> timedelta:
    """Parse a time string; raises DurationError with the offending text."""
    source = text.strip()
    if not source:
        raise DurationError("empty duration")
    position, total = 0, 0.0
    while position < len(source):
        match = _PART.match(source, position)
        if match is None:
            raise DurationError(f"invalid duration {text!r}")
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if total > MAX_DURATION.total_seconds():
        raise DurationError(f"duration {text!r} is longer than {MAX_DURATION.days} days")
    return timedelta(seconds=total)


def parse_instant(text: str) -> datetime | None:
    """An absolute time (RFC 3339 / ISO 8601) or None when `text` is not one."""
    if len(text) < 10:
        return None
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def resolve_due_time(text: str, now: datetime) -> datetime:
    """A sleep or timeout given as a duration from now or as an absolute date."""
    instant = parse_instant(text)
    if instant is not None:
        return instant
    return now + parse_duration(text)
