"""UI benchmark: the runs pages with 100,000 runs in PostgreSQL. `.venv/bin/python bench/ui.py [--runs N]`.

Fills a database of its own (`inngest_bench_ui`) with N runs over the last 7 days (4 functions,
5 statuses, 20 event names, one event per run), then renders each page through Django's test
client in this process (no HTTP in between) and prints p50 / p95 per page and query count.
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.stacks import recreate_database  # noqa: E402

DATABASE = "inngest_bench_ui"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=20)
    args = parser.parse_args()
    database_url = recreate_database(DATABASE)  # named with TEST_DATABASE_SUFFIX when it is set
    os.environ.update({"DATABASE_URL": database_url, "INNGEST_OPERATOR_LOGIN": "false",
                       "DJANGO_SETTINGS_MODULE": "inngest_project.settings", "INNGEST_LOG_LEVEL": "WARNING"})
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    try:
        started = time.monotonic()
        sample_run, sample_event = fill(args.runs)
        print(f"filled {args.runs:,} runs in {time.monotonic() - started:.0f}s")
        report(measure(sample_run, sample_event, args.samples), args.runs)
    finally:
        from django.db import connections

        connections.close_all()
        recreate_database(DATABASE, create=False)


def fill(count: int) -> tuple[str, str]:
    from django.utils import timezone
    from ulid import ULID

    from events.models import Event
    from functions.models import App, Function
    from runs.models import Run, RunStatus

    app = App.objects.create(name="bench-ui", url="http://127.0.0.1:9/api/inngest")
    functions = [Function.objects.create(app=app, slug=f"bench-ui-fn-{i}", name=f"fn {i}", url=app.url) for i in range(4)]
    now, rng = timezone.now(), random.Random(7)
    statuses = list(RunStatus.values)
    for start in range(0, count, 5_000):
        moments = sorted(now - timedelta(seconds=rng.uniform(0, 7 * 86_400)) for _ in range(min(5_000, count - start)))
        ids = [str(ULID.from_datetime(moment)) for moment in moments]
        events = Event.objects.bulk_create([
            Event(internal_id=run_id, name=f"bench/event-{rng.randrange(20)}", event_id=run_id, data={"i": i}, user={},
                  ts=int(moment.timestamp() * 1000), received_at=moment)
            for i, (run_id, moment) in enumerate(zip(ids, moments))
        ])
        Run.objects.bulk_create([
            Run(id=run_id, function=rng.choice(functions), event=event, events=[event.as_payload()],
                status=rng.choice(statuses), created_at=moment, output={"ok": True})
            for run_id, moment, event in zip(ids, moments, events)
        ])
    last = Run.objects.order_by("-id").values_list("id", "event__internal_id").first()
    return last[0], last[1]


def measure(run_id: str, event_id: str, samples: int) -> dict[str, tuple[list[float], int]]:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from runs.models import Run

    middle = Run.objects.order_by("-id").values_list("id", flat=True)[50_000 if Run.objects.count() > 50_000 else 0]
    pages = {
        "/runs/ (newest 50)": ("/runs/", {}),
        "/runs/?status=failed": ("/runs/", {"status": "failed"}),
        "/runs/?function=…": ("/runs/", {"function": "bench-ui-fn-2"}),
        "/runs/?event_name=…": ("/runs/", {"event_name": "bench/event-7"}),
        "/runs/ status + function + event name": ("/runs/", {"status": "completed", "function": "bench-ui-fn-1",
                                                              "event_name": "bench/event-3"}),
        "/runs/ one day, 3 days ago": ("/runs/", {"since": _day(3), "until": _day(2)}),
        "/runs/ page 1,000 (cursor)": ("/runs/", {"before": middle}),
        "/runs/?event_name=bench/event-1* (wildcard)": ("/runs/", {"event_name": "bench/event-1*"}),
        "/runs/rows (live poll, newest 50)": ("/runs/rows", {}),
        "/runs/rows?status=running (live poll)": ("/runs/rows", {"status": "running"}),
        "/runs/{id}": (f"/runs/{run_id}", {}),
        "/runs/{id}/live (poll while active)": (f"/runs/{run_id}/live", {}),
        "/functions/{slug}": ("/functions/bench-ui-fn-2", {}),
        "/functions/{slug}/runs (live poll)": ("/functions/bench-ui-fn-2/runs", {}),
        "/events/": ("/events/", {}),
        "/events/rows (live poll)": ("/events/rows", {}),
        "/events/?name=bench/event-1* (wildcard)": ("/events/", {"name": "bench/event-1*"}),
        "/events/ page 1,000 (cursor)": ("/events/", {"before": middle}),
        "/events/{id}": (f"/events/{event_id}", {}),
    }
    # Pages that did not exist before this version answer 404 there: measured where they exist.
    pages = {label: page for label, page in pages.items() if Client().get(*page).status_code == 200}
    client = Client()
    results = {}
    for label, (path, params) in pages.items():
        timings = []
        client.get(path, params)  # warm-up: template loading, connection, plan cache
        for _ in range(samples):
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                answer = client.get(path, params)
                timings.append(time.perf_counter() - started)
            assert answer.status_code == 200, (path, answer.status_code)
        results[label] = (timings, len(queries))
    return results


def _day(days_ago: int) -> str:
    from django.utils import timezone

    return (timezone.now() - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M")


def report(results: dict[str, tuple[list[float], int]], runs: int) -> None:
    print(f"\nUI pages with {runs:,} runs (PostgreSQL, rendered in-process; {os.cpu_count()} cores)")
    width = max(map(len, results))
    for label, (timings, queries) in results.items():
        ordered = sorted(timings)
        p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
        print(f"  {label:<{width}}  p50 {statistics.median(ordered) * 1000:6.1f} ms   p95 {p95 * 1000:6.1f} ms   {queries} queries")


if __name__ == "__main__":
    main()
