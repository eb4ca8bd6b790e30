"""`python manage.py event_keys create NAME [--key KEY] | list | revoke HINT_OR_NAME [--dry-run]`."""
from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from events.keys import create_key, revoke_key
from events.models import EventKey


class Command(BaseCommand):
    help = "Manage the event keys production /e/{key} accepts."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="create a key; it is printed once")
        create.add_argument("name")
        create.add_argument("--key", default="", help="use this key instead of a random one")
        actions.add_parser("list", help="list keys (hints only)")
        revoke = actions.add_parser("revoke", help="revoke keys by hint or name")
        revoke.add_argument("hint_or_name")
        revoke.add_argument("--dry-run", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "create":
            row, key = create_key(options["name"], options["key"])
            self.stdout.write(key)
            self.stderr.write(f"created event key {row.name!r} ({row.hint}…); it is not shown again")
        elif action == "list":
            rows = EventKey.objects.order_by("created_at")
            for row in rows:
                state = f"revoked {row.revoked_at:%Y-%m-%d}" if row.revoked_at else "active"
                self.stdout.write(f"{row.hint}…  {row.name}  created {row.created_at:%Y-%m-%d}  {state}")
            self.stdout.write(f"{rows.count()} keys, {rows.filter(revoked_at__isnull=True).count()} active")
        elif action == "revoke":
            matches = EventKey.objects.filter(revoked_at__isnull=True)
            count = (matches.filter(hint=options["hint_or_name"]) | matches.filter(name=options["hint_or_name"])).count()
            if options["dry_run"]:
                self.stdout.write(f"would revoke {count} keys")
                return
            if not count:
                raise CommandError(f"no active key has the hint or name {options['hint_or_name']!r}")
            self.stdout.write(f"revoked {revoke_key(options['hint_or_name'])} keys")
