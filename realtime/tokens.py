"""Subscription tokens: JWTs (HS256) naming the topics they may read, expiring, signed with a
secret derived from the server's DJANGO_SECRET_KEY, so every process and machine of one
deployment verifies what any of them minted, and a new secret key voids every token.
"""
from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass

import jwt
from django.conf import settings
from ulid import ULID

from realtime.messages import STREAM_TOPIC, Topic

ISSUER = "inngest-django/realtime"
# A Durable Endpoint's client follows the run's stream for as long as Inngest lets it (15
# minutes), plus a minute of margin.
RUN_STREAM_TOKEN_SECONDS = 16 * 60


class InvalidToken(Exception):
    pass


@dataclass(frozen=True)
class Grant:
    """What a verified token allows."""
    token_id: str
    topics: tuple[Topic, ...]
    may_publish: bool
    expires_at: float


def token_secret() -> bytes:
    return hmac.new(settings.SECRET_KEY.encode(), b"inngest realtime subscription tokens", hashlib.sha256).digest()


def mint_token(topics: list[Topic], expires_in: float | None = None, may_publish: bool = False) -> str:
    """A token for reading `topics` (and, with `may_publish`, publishing), valid `expires_in`
    seconds (INNGEST_REALTIME_TOKEN_SECONDS by default). A subscription opened before it
    expires stays open."""
    now = int(time.time())
    lifetime = settings.INNGEST_REALTIME_TOKEN_SECONDS if expires_in is None else expires_in
    claims = {
        "iss": ISSUER, "sub": "realtime", "iat": now, "exp": now + int(lifetime), "jti": str(ULID()),
        "topics": [{"kind": "run", "channel": topic.channel, "name": topic.name} for topic in topics],
        "publish": may_publish,
    }
    return jwt.encode(claims, token_secret(), algorithm="HS256")


def mint_run_stream_token(run_id: str) -> str:
    """The `realtime_token` of a Durable Endpoint's run: reads the run's teed stream (channel
    `run_id`, topic `$stream`), as `GET /v1/realtime/sse?token=` after the run goes async."""
    return mint_token([Topic(channel=run_id, name=STREAM_TOPIC)], expires_in=RUN_STREAM_TOKEN_SECONDS)


def verify_token(token: str) -> Grant:
    try:
        claims = jwt.decode(token, token_secret(), algorithms=["HS256"], issuer=ISSUER,
                            options={"require": ["exp", "iat", "jti", "iss"]})
    except jwt.PyJWTError as exc:
        raise InvalidToken(f"invalid realtime token: {exc}") from None
    topics = claims.get("topics") or []
    if not isinstance(topics, list) or not all(isinstance(t, dict) for t in topics):
        raise InvalidToken("invalid realtime token: malformed topics")
    return Grant(token_id=str(claims["jti"]), may_publish=claims.get("publish") is True, expires_at=float(claims["exp"]),
                 topics=tuple(Topic(channel=str(t.get("channel", "")), name=str(t.get("name", ""))) for t in topics))
