"""Internal event ids: ULIDs, deterministic when the SDK sends x-inngest-event-id-seed (§1.4)."""
from __future__ import annotations

import base64
import binascii

from ulid import ULID


class EventIdSeed:
    """`<unix_ms>,<base64 of 10 bytes>`: the n-th event of the request adds n to entropy bytes 6..9."""

    def __init__(self, millis: int, entropy: bytes) -> None:
        self.millis = millis
        self.entropy = entropy

    @classmethod
    def parse(cls, header: str | None) -> "EventIdSeed | None":
        if not header or "," not in header:
            return None
        millis_text, entropy_text = header.split(",", 1)
        try:
            millis = int(millis_text)
            entropy = base64.b64decode(entropy_text, validate=True)
        except (ValueError, binascii.Error):
            return None
        if len(entropy) != 10 or not 0 <= millis < 2**48:
            return None
        return cls(millis, entropy)

    def ulid_for(self, index: int) -> str:
        counter = (int.from_bytes(self.entropy[6:10], "big") + index) % 2**32
        entropy = self.entropy[:6] + counter.to_bytes(4, "big")
        return str(ULID.from_bytes(self.millis.to_bytes(6, "big") + entropy))


def new_event_id(seed: EventIdSeed | None, index: int) -> str:
    return seed.ulid_for(index) if seed else str(ULID())
