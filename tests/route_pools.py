"""Thread pools for the native routes' tests (inngest_project/native_route.py)."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from django.db import connection


class CountingPool(ThreadPoolExecutor):
    """A route's pool, counting the requests it served: 0 means Django (or the loop) answered."""

    def __init__(self, threads: int, name: str) -> None:
        super().__init__(threads, thread_name_prefix=name)
        self.used = 0

    def submit(self, *args, **kwargs):
        self.used += 1
        return super().submit(*args, **kwargs)


def close_each_thread_connection(pool: ThreadPoolExecutor, threads: int) -> None:
    """Each thread of a pool keeps its database connection, which would hold the test database
    open past the tests: every thread closes its own (each task waits for the others, so that
    one task runs on each thread)."""
    everyone = threading.Barrier(threads)
    for done in [pool.submit(lambda: (everyone.wait(), connection.close())) for _ in range(threads)]:
        done.result(timeout=10)
