"""`python manage.py requeue_stuck_runs [--dry-run]`: send again what no worker is working on."""
from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from runs.maintenance import find_stuck, requeue_stuck


class Command(BaseCommand):
    help = ("Re-send calls whose worker vanished or whose message was lost, and give active runs that have "
            "nothing pending and nothing to wait for a new call. (The timer tick does the first every second.)")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="only list them")

    def handle(self, *args: Any, **options: Any) -> None:
        stuck = find_stuck() if options["dry_run"] else requeue_stuck()
        for run_id in stuck.orphans:
            self.stdout.write(f"orphaned run {run_id}")
        verb = "would requeue" if options["dry_run"] else "requeued"
        self.stdout.write(f"{verb} {len(stuck.lost_calls)} lost calls and {len(stuck.orphans)} orphaned runs")
