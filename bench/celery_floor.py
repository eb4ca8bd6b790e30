"""The floor of our own engine (bench/peers.py): a chain of 4 no-op Celery tasks.

The same broker as the server (Redis), the same worker settings (prefork, acks late, prefetch 1),
its own queue. The chain's last result comes back through the Redis result backend, which is how
a caller learns that a workflow ended.
"""
from __future__ import annotations

import os

from celery import Celery

REDIS_URL = os.environ.get("BENCH_FLOOR_REDIS_URL", "redis://127.0.0.1:6379/14")

app = Celery("floor", broker=REDIS_URL, backend=REDIS_URL)
app.conf.update(
    task_default_queue="floor",
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
    result_expires=600,
)


@app.task(name="floor.noop")
def noop(value: int = 0) -> int:
    return value + 1
