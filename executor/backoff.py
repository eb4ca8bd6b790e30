"""When to retry a failed call: Inngest's backoff table, a linear override, and Retry-After."""
from __future__ import annotations

import email.utils
from datetime import datetime, timedelta, timezone

# Seconds before the retry that follows attempt N (zero-based), then jitter (§4.5).
BACKOFF_TABLE = (15, 30, 60, 120, 300, 600, 1200, 2400, 3600, 7200)
MAX_JITTER_SECONDS = 30.0
RETRY_AFTER_MIN = timedelta(seconds=1)
RETRY_AFTER_MAX = timedelta(hours=24)


def backoff_seconds(attempt: int, jitter_fraction: float, linear_interval: float = 0.0) -> float:
    """Delay before retrying after `attempt` failed. `jitter_fraction` in [0, 1) comes from the caller."""
    if linear_interval > 0:
        return linear_interval
    base = BACKOFF_TABLE[min(attempt, len(BACKOFF_TABLE) - 1)]
    return base + jitter_fraction * MAX_JITTER_SECONDS


def parse_retry_after(value: str | None, now: datetime) -> datetime | None:
    """Retry-After as seconds (up to 7 digits) or a date; clamped to [now+1s, now+24h]."""
    if not value:
        return None
    value = value.strip()
    when: datetime | None = None
    if len(value) <= 7 and value.isascii() and value.isdigit():  # isdigit alone takes '²', which int() refuses
        when = now + timedelta(seconds=int(value))
    else:
        when = _parse_date(value)
    if when is None:
        return None
    return min(max(when, now + RETRY_AFTER_MIN), now + RETRY_AFTER_MAX)


def _parse_date(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed
