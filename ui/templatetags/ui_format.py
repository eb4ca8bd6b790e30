"""How the UI writes durations: milliseconds under a second, seconds under a minute, then minutes
and hours (Django's `timesince` says "0 minutes" for anything under one)."""
from __future__ import annotations

from datetime import datetime, timedelta

from django import template
from django.utils import timezone

register = template.Library()


@register.filter
def duration(value: float | timedelta | None) -> str:
    """A duration given in milliseconds (or as a timedelta): "850 ms", "3.2 s", "4 min 05 s", "2 h 03 min"."""
    if value is None or value == "":
        return ""
    millis = value.total_seconds() * 1000 if isinstance(value, timedelta) else float(value)
    if millis < 0:
        millis = 0.0
    if millis < 1:
        return f"{millis:.2f} ms"
    if millis < 1_000:
        return f"{millis:.0f} ms"
    seconds = millis / 1000
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes, seconds = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


@register.filter
def until(start: datetime | None, end: datetime | None) -> str:
    """The time from `start` to `end` (to now when `end` is empty), written as `duration` does."""
    if start is None:
        return ""
    return duration((end or timezone.now()) - start)
