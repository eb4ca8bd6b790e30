"""`python manage.py sync_apps [URL ...]`: ask every known app (and the given URLs) to sync."""
from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from functions.models import App
from functions.sync_request import request_sync


class Command(BaseCommand):
    help = "Re-sync every known app, and the app URLs given; unchanged apps are no-ops."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("urls", nargs="*")

    def handle(self, *args: Any, **options: Any) -> None:
        urls = list(dict.fromkeys([*options["urls"], *App.objects.exclude(url="").values_list("url", flat=True)]))
        failed = 0
        for url in urls:
            error = request_sync(url)
            failed += bool(error)
            self.stdout.write(f"{url}: {error or 'synced'}")
        self.stdout.write(f"synced {len(urls) - failed} of {len(urls)} apps")
