"""`python manage.py replay_run RUN_ID` or `replay_run --function SLUG [--since T] [--until T]
[--status failed] [--dry-run]`: run again from the first step, with the same events."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from runs.maintenance import replay, runs_to_replay
from runs.models import Run, RunStatus


class Command(BaseCommand):
    help = "Start new runs with the events of one run, or of a function's runs in a time range."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("run_id", nargs="?", help="one run to replay")
        parser.add_argument("--function", help="replay this function's runs (slug)")
        parser.add_argument("--since", type=_instant, help="created at or after (ISO 8601, UTC by default)")
        parser.add_argument("--until", type=_instant, help="created before (ISO 8601)")
        parser.add_argument("--status", choices=RunStatus.values, help="only runs that ended with this status")
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        if bool(options["run_id"]) == bool(options["function"]):
            raise CommandError("give either a RUN_ID or --function")
        if options["run_id"]:
            runs = list(Run.objects.select_related("function", "event").filter(id=options["run_id"]))
            if not runs:
                raise CommandError(f"no run {options['run_id']}")
        else:
            runs = runs_to_replay(options["function"], options["since"], options["until"], options["status"] or "")
        for run in runs:
            if options["dry_run"]:
                self.stdout.write(f"would replay {run.id}")
            else:
                self.stdout.write(f"replayed {run.id} as {replay(run).id}")
        self.stdout.write(f"{'would replay' if options['dry_run'] else 'replayed'} {len(runs)} runs")


def _instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
