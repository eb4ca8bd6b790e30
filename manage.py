#!/usr/bin/env python
"""Django's command-line entry point for the server."""
import os
import sys

# Commands that make what a production login needs (users, passwords, tokens, event keys). Run
# without DATABASE_URL they write to the dev server's SQLite file, which production never reads,
# and the production login then fails with no hint why.
ACCOUNT_COMMANDS = {"createsuperuser", "changepassword", "drf_create_token", "event_keys"}


def refuse_accounts_in_the_dev_database(argv: list[str]) -> None:
    has_database = os.environ.get("DATABASE_URL") or os.environ.get("INNGEST_POSTGRES_URI")
    if len(argv) > 1 and argv[1] in ACCOUNT_COMMANDS and not has_database and os.environ.get("INNGEST_DEV_DATABASE") != "1":
        sys.exit(
            f"refusing to run {argv[1]}: DATABASE_URL is not set, so it would write to the dev server's SQLite "
            "database, which production does not read.\n"
            f"  For production:  DATABASE_URL=postgres://... python manage.py {' '.join(argv[1:])}\n"
            f"  For the dev database, on purpose:  INNGEST_DEV_DATABASE=1 python manage.py {' '.join(argv[1:])}"
        )


def main() -> None:
    refuse_accounts_in_the_dev_database(sys.argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inngest_project.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
