"""`python manage.py dead_letters [--older-than 7d] [--retry | --purge] [--dry-run]`: the runs
that failed because their app could not be reached at all (no HTTP answer on the last call)."""
from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.durations import DurationError, parse_duration
from runs.maintenance import dead_letters, replay
from runs.models import Run


class Command(BaseCommand):
    help = "List undeliverable runs; --retry replays them, --purge deletes them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--older-than", help="only those that ended longer ago than this (e.g. 7d)")
        action = parser.add_mutually_exclusive_group()
        action.add_argument("--retry", action="store_true", help="replay each from its first step")
        action.add_argument("--purge", action="store_true", help="delete them")
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            age = parse_duration(options["older_than"]) if options["older_than"] else None
        except DurationError as exc:
            raise CommandError(f"--older-than: {exc}") from None
        letters = dead_letters(age)
        for run in letters:
            self.stdout.write(f"{run.id}  {run.function.slug}  ended {run.ended_at:%Y-%m-%d %H:%M}  {(run.last_error or {}).get('message', '')}")
        if options["dry_run"] or not (options["retry"] or options["purge"]):
            self.stdout.write(f"{len(letters)} dead letters")
            return
        if options["retry"]:
            for run in letters:
                replay(run)
            self.stdout.write(f"replayed {len(letters)} dead letters")
        else:
            deleted = Run.objects.filter(id__in=[run.id for run in letters]).delete()[1].get("runs.Run", 0)
            self.stdout.write(f"purged {deleted} dead letters")
