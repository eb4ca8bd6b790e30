"""Storing one event that starts one run (runs/intake.py `store_events`), in-process, on PostgreSQL:
the round trips it makes and its wall and CPU time per event.

```sh
DATABASE_URL=postgres://…/inngest_bench_intake .venv/bin/python bench/intake.py [--events 500]
```

The database is created if missing and migrated; its tables are emptied first. No broker: the
first call's message goes to Celery's in-memory transport, so the figures are the database part
of event → first call. Four cases: an event a function with no flow control listens to (no
idempotency key: the `/e/` client sent no id and no id seed), the same with an id seed (the
official SDK's way: a key to claim), an event nobody listens to, and an event a run waits for.
Round trips: every statement the connection sends, plus BEGIN and COMMIT for each transaction
(psycopg2 sends BEGIN before the first statement of a transaction). CPU ms: this process's CPU
time per event (mean); PG CPU ms: that of the PostgreSQL backend serving its connection, read
from /proc (PostgreSQL must run on this machine). Wall p50 depends on what else the machine runs.
"""
from __future__ import annotations

import argparse
import base64
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inngest_project.settings")
os.environ.setdefault("INNGEST_INSECURE", "true")
os.environ.pop("REDIS_URL", None)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=500)
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("DATABASE_URL must name a PostgreSQL database")
    _create_database(os.environ["DATABASE_URL"])
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    _empty_tables()
    listened, awaited = _setup_functions()
    cases = {
        "1 event → 1 run, no key": lambda i: _event(listened, i),
        "1 event → 1 run, id seed (a key)": lambda i: _event(listened, i, seeded=True),
        "1 event nobody listens to": lambda i: _event("bench/nobody.listens", i),
        "1 event → 1 run + a wait it misses": lambda i: _event(awaited, i),
    }
    print(f"{'case':<36} {'round trips':>11} {'statements':>10} {'wall p50 ms':>11} {'CPU ms':>7} {'PG CPU ms':>9}")
    for title, make in cases.items():
        print(f"{title:<36} " + _measure(make, args.events))


def _create_database(url: str) -> None:
    import psycopg2

    base, name = url.rsplit("/", 1)
    admin = psycopg2.connect(f"{base}/postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if cursor.fetchone() is None:
            cursor.execute(f"CREATE DATABASE {name}")
    admin.close()


def _empty_tables() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        tables = [t for t in connection.introspection.table_names(cursor) if t.split("_")[0] in ("events", "runs", "functions")]
        cursor.execute(f"TRUNCATE {', '.join(tables)} CASCADE")


def _setup_functions() -> tuple[str, str]:
    from django.utils import timezone

    from functions.models import App, Function, Trigger
    from runs.models import Run, Wait, WaitKind

    app = App.objects.create(name="bench-intake", url="http://127.0.0.1:9/api/inngest")
    for slug, event in (("bench-intake-one", "bench/intake.one"), ("bench-intake-waited", "bench/intake.waited")):
        function = Function.objects.create(app=app, slug=slug, name=slug, url=f"http://127.0.0.1:9/api/inngest?fnId={slug}")
        Trigger.objects.create(function=function, event_name=event)
    waiter = Function.objects.create(app=app, slug="bench-intake-waiter", name="waiter", url="http://127.0.0.1:9/")
    run = Run.objects.create(id="01BENCHWAITER0000000000000", function=waiter, status="running", events=[{}])
    Wait.objects.create(run=run, kind=WaitKind.EVENT, step_id="w", event_name="bench/intake.waited",
                        expression="async.data.n == 0", expires_at=timezone.now() + timezone.timedelta(days=1))
    return "bench/intake.one", "bench/intake.waited"


def _event(name: str, i: int, seeded: bool = False):
    from events.ids import EventIdSeed, new_event_id
    from runs.intake import validate_event

    seed = EventIdSeed.parse(f"{int(time.time() * 1000)},{base64.b64encode(os.urandom(10)).decode()}") if seeded else None
    event = validate_event({"name": name, "data": {"n": -1 - i}}, new_event_id(seed, 0), int(time.time() * 1000), False)
    event.has_unique_id = seed is None
    return event


def _measure(make, count: int) -> str:
    from django.db import connection

    from runs.intake import store_events

    counts = {"statements": 0, "transactions": 0, "open": False}

    def counted(execute, sql, params, many, context):
        counts["statements"] += 1
        if connection.in_atomic_block and not counts["open"]:
            counts["open"] = True
            counts["transactions"] += 1
        return execute(sql, params, many, context)

    for i in range(20):  # warm: prepared statements, caches
        store_events([make(i)])
    walls, cpus, trips, statements = [], [], [], []
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (backend,) = cursor.fetchone()
    backend_before = _backend_cpu(backend)
    with connection.execute_wrapper(counted):
        for i in range(count):
            event = make(i)
            counts.update(statements=0, transactions=0, open=False)
            wall, cpu = time.perf_counter(), time.process_time()
            store_events([event])
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
            statements.append(counts["statements"])
            trips.append(counts["statements"] + 2 * counts["transactions"])
    backend_ms = (_backend_cpu(backend) - backend_before) * 1000 / count
    return (f"{statistics.median(trips):>11.0f} {statistics.median(statements):>10.0f} "
            f"{statistics.median(walls) * 1000:>11.2f} {statistics.mean(cpus) * 1000:>7.2f} {backend_ms:>9.2f}")


def _backend_cpu(pid: int) -> float:
    """CPU seconds the PostgreSQL backend serving this connection has used (it runs on this machine)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    main()
