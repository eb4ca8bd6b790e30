"""Parsing cron triggers: 5 fields, an optional `TZ=`/`CRON_TZ=` zone, no `@` descriptors (§2)."""
from __future__ import annotations

import zoneinfo
from dataclasses import dataclass

from celery.schedules import crontab


class CronError(ValueError):
    pass


@dataclass(frozen=True)
class Cron:
    minute: str
    hour: str
    day_of_month: str
    month_of_year: str
    day_of_week: str
    zone: str


def parse_cron(expression: str) -> Cron:
    """A 5-field cron with an optional `TZ=Zone` / `CRON_TZ=Zone` prefix; descriptors are refused."""
    text, zone = expression.strip(), "UTC"
    if text.startswith(("TZ=", "CRON_TZ=")):
        prefix, _, text = text.partition(" ")
        zone = prefix.split("=", 1)[1]
    if text.startswith("@"):
        raise CronError(f"cron descriptors such as {text.split()[0]} are not supported: use 5 fields")
    fields = text.split()
    if len(fields) != 5:
        raise CronError(f"a cron needs 5 fields (minute hour day-of-month month day-of-week), got {expression!r}")
    try:
        zoneinfo.ZoneInfo(zone)
        minute, hour, dom, month, dow = fields
        crontab(minute=minute, hour=hour, day_of_month=dom, month_of_year=month, day_of_week=dow)
    except (ValueError, zoneinfo.ZoneInfoNotFoundError) as exc:
        raise CronError(f"invalid cron {expression!r}: {exc}") from None
    return Cron(minute, hour, dom, month, dow, zone)
