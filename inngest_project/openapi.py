"""The OpenAPI schema documents the operator API (/api/v1) only: the SDK-facing endpoints follow
Inngest's protocol, documented in the SDKs and in protocol.md."""
from __future__ import annotations


def only_operator_api(endpoints: list, **_: object) -> list:
    return [endpoint for endpoint in endpoints if endpoint[0].startswith("/api/v1/")]
