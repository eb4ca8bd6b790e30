"""What one workflow costs each process of the stack: CPU, SQL statements, Redis commands.

Wall-clock figures move with whatever else the machine runs; these do not (much): CPU seconds
from /proc of each process group, SQL messages and transactions counted inside the server's
own processes (bench/sql_counter; a message of several statements, runs/sql_batch.py, is one
round trip and counts once), Redis commands from INFO commandstats. A snapshot before and
after a load, less what the same time costs with no load (beat, timers, idle polling),
divided by its runs.

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
    redis_calls: dict[str, int]  # command → calls
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
        cpu: dict[str, float] = {}
        sql: dict[str, tuple[int, int]] = {}
        counts = _sql_counts(self.sql_dir)
        for name, roots in self.groups.items():
            for pid in (pid for root in roots for pid in _tree(root)):
                group = _role(pid) or name
                cpu[group] = cpu.get(group, 0.0) + _cpu_seconds(pid)
                statements, transactions = sql.get(group, (0, 0))
                mine = counts.get(str(pid), (0, 0))
                sql[group] = (statements + mine[0], transactions + mine[1])
        cpu["PostgreSQL backends"] = sum(_cpu_seconds(pid) for pid in backends)
        cpu["Redis"] = _cpu_seconds(int(self.redis.info("server")["process_id"]))
        calls = {key.removeprefix("cmdstat_"): stats["calls"] for key, stats in self.redis.info("commandstats").items()
                 if key != "cmdstat_info"}
        return Snapshot(cpu, sql, calls, time.time())

    def idle(self, seconds: float = 4.0) -> tuple[Snapshot, Snapshot]:
        """Two snapshots `seconds` apart with no load: what beat, the timer worker and idle
        workers polling the broker cost per second, to take out of the load's figures."""
        before = self.snapshot()
        time.sleep(seconds)
        return before, self.snapshot()

    def figures(self, before: Snapshot, after: Snapshot, runs: int, idle: tuple[Snapshot, Snapshot]) -> dict[str, str]:
        """Per workflow, less what the same time costs idle: CPU ms of each group of processes,
        SQL messages and transactions of the call workers and gunicorn, Redis commands."""
        scale = (after.at - before.at) / (idle[1].at - idle[0].at)

        def net(load: float, idle_value: float) -> float:
            return max(0.0, load - idle_value * scale) / runs

        figures = {}
        for name in after.cpu:
            spent = net(after.cpu[name] - before.cpu.get(name, 0.0), idle[1].cpu.get(name, 0.0) - idle[0].cpu.get(name, 0.0))
            figures[f"CPU ms per workflow: {name}"] = f"{spent * 1000:.2f}"
        total = net(sum(after.cpu.values()) - sum(before.cpu.values()), sum(idle[1].cpu.values()) - sum(idle[0].cpu.values()))
        figures["CPU ms per workflow: all of the above"] = f"{total * 1000:.2f}"
        if self.sql_dir is not None:
            for name in after.sql:
                statements, transactions = (net(after.sql[name][i] - before.sql.get(name, (0, 0))[i],
                                                idle[1].sql.get(name, (0, 0))[i] - idle[0].sql.get(name, (0, 0))[i]) for i in (0, 1))
                if statements:
                    figures[f"SQL per workflow, {name}: messages / transactions / round trips"] = \
                        f"{statements:.2f} / {transactions:.2f} / {statements + 2 * transactions:.2f}"
        by_command = {
            command: net(calls - before.redis_calls.get(command, 0), idle[1].redis_calls.get(command, 0) - idle[0].redis_calls.get(command, 0))
            for command, calls in after.redis_calls.items()
        }
        top = ", ".join(f"{command} {calls:.1f}" for command, calls in sorted(by_command.items(), key=lambda item: -item[1])[:6] if calls >= 0.05)
        figures["Redis commands per workflow"] = f"{sum(by_command.values()):.2f} ({top})"
        return figures


def _role(pid: int) -> str | None:
    """The part of `manage.py start` a process plays, from its command line."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, ProcessLookupError):
        return None
    if b"inngest_project.wsgi" in argv:
        return "server: gunicorn (/e/, API)"
    if b"beat" in argv:
        return "server: celery beat"
    if b"inngest-timers" in argv:
        return "server: timer worker"
    return None


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
        "server: manage.py start": [running.stack.server.pid],
        "celery call workers (main + pool)": [worker.pid for worker in running.stack.workers],
        "SDK app (gunicorn)": [running.app_pid],
    }
    return CostMeter(groups, running.db, running.db.info.dbname, redis_url, sql_dir)
