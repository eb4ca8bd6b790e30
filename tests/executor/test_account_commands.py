"""The README trap of issue 21: `createsuperuser` without DATABASE_URL wrote the user into the
dev SQLite file, and the production login then failed. Now it says so and stops."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.stacks import MANAGE, ROOT


def manage(args: list[str], tmp_path: Path, **extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "INNGEST_POSTGRES_URI", "INNGEST_DEV_DATABASE")}
    env.update({"INNGEST_DEV_DATA_DIR": str(tmp_path), "DJANGO_SUPERUSER_PASSWORD": "pw", **extra})
    return subprocess.run([sys.executable, MANAGE, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_account_commands_refuse_the_dev_database_unless_asked(tmp_path: Path) -> None:
    refused = manage(["createsuperuser", "--noinput", "--username", "ops", "--email", "o@example.com"], tmp_path)
    assert refused.returncode == 1
    assert "DATABASE_URL is not set" in refused.stderr and "DATABASE_URL=postgres://... python manage.py createsuperuser" in refused.stderr
    assert not (tmp_path / "dev.sqlite3").exists()  # nothing written

    assert manage(["migrate", "-v", "0"], tmp_path).returncode == 0
    on_purpose = manage(["createsuperuser", "--noinput", "--username", "ops", "--email", "o@example.com"], tmp_path,
                        INNGEST_DEV_DATABASE="1")
    assert on_purpose.returncode == 0, on_purpose.stderr
