"""The Redis client for what processes share (metrics, flow-control counters): Redis when
REDIS_URL is set, an in-process fakeredis otherwise (dev mode is one process)."""
from __future__ import annotations

from typing import Any

from django.conf import settings


def new_redis_client() -> Any:
    if settings.REDIS_URL:
        import redis

        return redis.Redis.from_url(settings.REDIS_URL, health_check_interval=30)
    import fakeredis

    return fakeredis.FakeRedis(server=fakeredis.FakeServer())
