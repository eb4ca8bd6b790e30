"""What one workflow costs each process of the stack: CPU, SQL statements, Redis commands.

Wall-clock figures move with whatever else the machine runs; these do not (much): CPU seconds
from /proc of each process group, SQL statements and transactions counted inside the server's
own processes (bench/sql_counter), Redis commands from INFO commandstats. A snapshot before
and after a load, divided by its runs.

PostgreSQL's CPU is that of the backends serving the bench's database that live through the
whole load (the server keeps its connections: CONN_MAX_AGE); Redis's is the server process's,
shared with anyone else using that Redis while the load runs.
"""
from __future__ import annotations

import os
import struct
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

SQL_COUNTER = Path(__file__).resolve().parent / "sql_counter"
TICKS = os.sysconf("SC_CLK_TCK")


def enable_sql_counting() -> Path:
    """Make every process started from here on count its SQL (see bench/sql_counter)."""
    directory = Path(tempfile.mkdtemp(prefix="bench-sql-"))
    os.environ["BENCH_SQL_COUNT_DIR"] = str(directory)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SQL_COUNTER), os.environ.get("PYTHONPATH", "")]))
    return directory


@dataclass
class Snapshot:
    cpu: dict[str, float]  # process group → CPU seconds
    sql: dict[str, tuple[int, int]]  # pid → (statements, transactions)
    redis_calls: int
    at: float


class CostMeter:
    """Snapshots of the stack's costs; `groups` maps a name to the root pids of a process tree."""

    def __init__(self, groups: dict[str, list[int]], db: Any, database: str, redis_url: str, sql_dir: Path | None) -> None:
        self.groups, self.db, self.database, self.sql_dir = groups, db, database, sql_dir
        self.redis = redis.Redis.from_url(redis_url)

    def snapshot(self) -> Snapshot:
        with self.db.cursor() as cursor:
            cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [self.database])
            backends = [pid for (pid,) in cursor.fetchall()]
        cpu = {name: sum(_cpu_seconds(pid) for root in roots for pid in _tree(root)) for name, roots in self.groups.items()}
        cpu["PostgreSQL backends"] = sum(_cpu_seconds(pid) for pid in backends)
        cpu["Redis"] = _cpu_seconds(int(self.redis.info("server")["process_id"]))
        calls = sum(stats["calls"] for key, stats in self.redis.info("commandstats").items() if key != "cmdstat_info")
        return Snapshot(cpu, _sql_counts(self.sql_dir), calls, time.time())

    def figures(self, before: Snapshot, after: Snapshot, runs: int, label: str = "") -> dict[str, str]:
        """Per workflow: CPU ms of each group, SQL statements and transactions, Redis commands."""
        figures = {}
        for name in after.cpu:
            spent = after.cpu[name] - before.cpu.get(name, 0.0)
            figures[f"CPU ms per workflow{label}: {name}"] = f"{spent / runs * 1000:.2f}"
        total = sum(after.cpu.values()) - sum(before.cpu.values())
        figures[f"CPU ms per workflow{label}: all of the above"] = f"{total / runs * 1000:.2f}"
        statements = sum(s for s, _ in after.sql.values()) - sum(s for s, _ in before.sql.values())
        transactions = sum(t for _, t in after.sql.values()) - sum(t for _, t in before.sql.values())
        if self.sql_dir is not None:
            figures[f"SQL statements per workflow{label} (server processes)"] = f"{statements / runs:.2f}"
            figures[f"SQL transactions per workflow{label} (BEGIN … COMMIT)"] = f"{transactions / runs:.2f}"
            figures[f"PostgreSQL round trips per workflow{label} (statements + 2 per transaction)"] = \
                f"{(statements + 2 * transactions) / runs:.2f}"
        figures[f"Redis commands per workflow{label}"] = f"{(after.redis_calls - before.redis_calls) / runs:.2f}"
        return figures


def _tree(root: int) -> list[int]:
    pids, found = [root], []
    while pids:
        pid = pids.pop()
        found.append(pid)
        try:
            pids.extend(int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            pass
    return found


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a live process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14 and 15 of proc(5))


def _sql_counts(directory: Path | None) -> dict[str, tuple[int, int]]:
    if directory is None:
        return {}
    layout = struct.Struct("<2q")
    counts = {}
    for path in directory.glob("*.counts"):
        data = path.read_bytes()
        if len(data) == layout.size:
            counts[path.stem] = layout.unpack(data)
    return counts


def stack_meter(running: Any, sql_dir: Path | None, redis_url: str) -> CostMeter:
    """A meter over a bench_stack (bench/core.py): its server, its celery workers, the SDK app."""
    groups = {
        "server (manage.py start: gunicorn, beat, timer worker)": [running.stack.server.pid],
        "celery call workers (main + pool)": [worker.pid for worker in running.stack.workers],
        "SDK app (gunicorn)": [running.app_pid],
    }
    return CostMeter(groups, running.db, running.db.info.dbname, redis_url, sql_dir)
