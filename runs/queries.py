"""Finding runs: the filters the UI and the REST API share, each an indexed query (an event name
may be a wildcard, `app/*`)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

from ulid import ULID

from events.queries import name_matches
from runs.models import RunStatus


@dataclass(frozen=True)
class RunFilter:
    status: str = ""
    function: str = ""
    event_name: str = ""
    since: str = ""
    until: str = ""
    before: str = ""  # the cursor: runs older than this id

    @classmethod
    def from_query(cls, query: Any) -> "RunFilter":
        return cls(**{name: str(query.get(name, "")).strip() for name in cls.__dataclass_fields__})

    def apply(self, runs: Any) -> Any:
        if self.status in RunStatus.values:
            runs = runs.filter(status=self.status)
        if self.function:
            runs = runs.filter(function__slug=self.function)
        if self.event_name:
            runs = runs.filter(name_matches("event__name", self.event_name))
        # Run ids are ULIDs: a time range is a range of the primary key, which is indexed.
        if (since := _ulid_floor(self.since)) is not None:
            runs = runs.filter(id__gte=since)
        if (until := _ulid_floor(self.until)) is not None:
            runs = runs.filter(id__lt=until)
        if self.before:
            runs = runs.filter(id__lt=self.before)
        return runs

    def next_page(self, last_id: str) -> str:
        params = {k: v for k, v in self.__dict__.items() if v and k != "before"}
        return "?" + urlencode({**params, "before": last_id})


def _ulid_floor(text: str) -> str | None:
    """The smallest run id created at the given time (HTML datetime-local, read as UTC)."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    # A ULID's time is 48 bits of milliseconds since 1970: earlier or later moments are its ends.
    millis = min(max(int(moment.timestamp() * 1000), 0), 2**48 - 1)
    return str(ULID.from_bytes(millis.to_bytes(6, "big") + bytes(10)))
