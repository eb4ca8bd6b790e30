"""The custom scalars of Inngest's schema that queries name in their variables (`$id: ULID!`)."""
from __future__ import annotations

from datetime import datetime
from typing import NewType, Optional

import strawberry

Time = NewType("Time", str)  # RFC 3339 text, as Inngest's `Time`
ULID = NewType("ULID", str)
SpanMetadataScope = NewType("SpanMetadataScope", str)
SpanMetadataKind = NewType("SpanMetadataKind", str)
SpanMetadataValues = NewType("SpanMetadataValues", object)  # a JSON object, sent as JSON (not a string)


def _text_scalar(name: str) -> object:
    return strawberry.scalar(name=name, serialize=str, parse_value=str)


SCALAR_MAP = {
    Time: _text_scalar("Time"),
    ULID: _text_scalar("ULID"),
    SpanMetadataScope: _text_scalar("SpanMetadataScope"),
    SpanMetadataKind: _text_scalar("SpanMetadataKind"),
    SpanMetadataValues: strawberry.scalar(name="SpanMetadataValues", serialize=lambda v: v, parse_value=lambda v: v),
}


def time_text(moment: Optional[datetime]) -> Optional[Time]:
    return Time(moment.isoformat()) if moment is not None else None
