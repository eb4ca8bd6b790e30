"""`python manage.py prune_runs --older-than 30d [--dry-run]`: delete run history past retention."""
from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from core.durations import DurationError, parse_duration
from runs.maintenance import prune


class Command(BaseCommand):
    help = "Delete runs that ended, and events received, more than --older-than ago (default 30d)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--older-than", default="30d", help="a time string: 30d, 12h, 2w")
        parser.add_argument("--dry-run", action="store_true", help="count what would be deleted")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            age = parse_duration(options["older_than"])
        except DurationError as exc:
            raise CommandError(f"--older-than: {exc}") from None
        result = prune(timezone.now() - age, dry_run=options["dry_run"])
        verb = "would delete" if options["dry_run"] else "deleted"
        self.stdout.write(f"{verb} {result.runs} runs, {result.events} events and {result.keys} expired "
                          f"idempotency keys older than {options['older_than']}")
