"""`/e/` throughput of the HTTP server before and after the switch to ASGI (realtime):
`.venv/bin/python bench/http_servers.py [--seconds 10] [--rounds 3]`. Needs `wrk` (Debian: wrk).

Serves the project with gunicorn (2 processes, production mode: PostgreSQL database
`inngest_bench`, Redis db 13 or BENCH_REDIS_URL) in each way below, in turn, round after round so
that the machine's other load falls on all of them alike, and drives it with wrk (2 threads, 16
connections) posting one event per request (a name no function listens to). Prints requests/s
per round and the median.

- wsgi: gunicorn's gthread worker, 8 threads (the server before realtime).
- asgi: uvicorn's worker, Django's WSGI application in a pool of 8 threads (inngest_project/asgi.py),
  with `POST /e/{key}` served in front of it natively (inngest_project/event_route.py) since it landed.
- django-asgi: uvicorn's worker, Django's own ASGI handler (the road not taken).
"""
from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.sdk_app import free_port  # noqa: E402
from tests.stacks import recreate_database, stop_process, wait_http  # noqa: E402

DATABASE = "inngest_bench"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
SERVERS = {
    "wsgi": ["inngest_project.wsgi", "--worker-class", "gthread", "--threads", "8"],
    "asgi": ["inngest_project.asgi:application", "--worker-class", "uvicorn_worker.UvicornWorker"],
    "django-asgi": ["bench.django_asgi:application", "--worker-class", "uvicorn_worker.UvicornWorker"],
}
WRK_SCRIPT = """wrk.method = "POST"
wrk.body = '{"name": "bench/nobody.listens", "data": {"n": 1}}'
wrk.headers["Content-Type"] = "application/json"
"""


def measure(server: str, env: dict[str, str], seconds: int, script: str) -> float:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", *SERVERS[server], "--bind", f"127.0.0.1:{port}",
                                "--workers", "2", "--log-level", "warning"], env=env, cwd=ROOT, start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/health")
        url = f"http://127.0.0.1:{port}/e/bench-key"
        subprocess.run(["wrk", "-t2", "-c16", "-d2s", "-s", script, url], capture_output=True, check=True)  # warm up
        done = subprocess.run(["wrk", "-t2", "-c16", f"-d{seconds}s", "-s", script, url], capture_output=True, text=True, check=True)
    finally:
        stop_process(process)
    if "Non-2xx" in done.stdout:
        raise SystemExit(f"{server}: errors under load:\n{done.stdout}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", done.stdout).group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--servers", default=",".join(SERVERS), help="comma-separated, of: " + ", ".join(SERVERS))
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    servers = args.servers.split(",")
    database_url = recreate_database(DATABASE)
    redis.Redis.from_url(REDIS_URL).flushdb()
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": REDIS_URL, "INNGEST_INSECURE": "true",
           "DJANGO_SECRET_KEY": secrets.token_urlsafe(50), "DJANGO_ALLOWED_HOSTS": "127.0.0.1", "INNGEST_LOG_LEVEL": "WARNING"}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], env=env, cwd=ROOT, check=True, capture_output=True)
    results: dict[str, list[float]] = {server: [] for server in servers}
    try:
        with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
            script.write(WRK_SCRIPT)
            script.flush()
            for round_number in range(1, args.rounds + 1):
                for server in servers:
                    results[server].append(measure(server, env, args.seconds, script.name))
                    print(f"round {round_number}  {server:<12} {results[server][-1]:8.0f} requests/s", flush=True)
    finally:
        recreate_database(DATABASE, create=False)
    print(f"\n/e/ single-event requests/s, median of {args.rounds} rounds of {args.seconds} s (gunicorn, 2 processes; {os.cpu_count()} cores)")
    for server, figures in results.items():
        print(f"  {server:<12} {statistics.median(figures):8.0f}   (rounds: {', '.join(f'{f:.0f}' for f in figures)})")


if __name__ == "__main__":
    main()
