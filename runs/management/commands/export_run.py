"""`python manage.py export_run RUN_ID`: the run as JSON on stdout (events, steps, calls, waits)."""
from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from runs.maintenance import export
from runs.models import Run


class Command(BaseCommand):
    help = "Print a run, its events, memoized steps, every call and its open waits as JSON."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("run_id")

    def handle(self, *args: Any, **options: Any) -> None:
        run = Run.objects.select_related("function", "event").prefetch_related("steps", "attempts").filter(id=options["run_id"]).first()
        if run is None:
            raise CommandError(f"no run {options['run_id']}")
        self.stdout.write(export(run))
