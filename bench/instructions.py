"""Instructions per workflow in the call worker, counted by callgrind: `.venv/bin/python bench/instructions.py`.

A figure that does not drift with the machine. On the 2-core machines these benches run on, the
same load's CPU time moves by up to 40% from one minute to the next (README, "Benchmarks"), so
a cut worth 1 to 5% of the worker's CPU cannot be seen in seconds. callgrind counts the
instructions the process executes instead: the same code, load and inputs give nearly the same
count (the threads' interleaving and Celery's idle polling move it a little: compare two runs).

The production stack of bench/core.py (its own database), with the one call worker started under
`valgrind --tool=callgrind` with counting off. After a warm-up load the count is zeroed and
switched on; `--runs` 3-step workflows are sent at once (bench/peers.py's load, in batches of
100); when the last has completed the count is switched off and the worker's counts dumped.
Printed: instructions per workflow and per SDK call (4 per workflow), and the share of each
shared object in them (self cost: the interpreter, psycopg2 and libpq, libcurl, the json
module, the C library).

Under callgrind the worker runs 30 to 50 times slower: 200 workflows take 20 to 30 s counted,
the whole run about 90 s; the rest of the stack runs at its normal speed and waits for it.
Needs valgrind (Debian's package).
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.core import SIGNING_KEY, Running, bench_stack  # noqa: E402
from bench.peers import run_load  # noqa: E402
from tests.stacks import wait_for  # noqa: E402

DATABASE = "inngest_bench_instructions"
CALLS_PER_WORKFLOW = 4  # bench-three-steps: three steps and the call that returns the output
# Shared objects by the part of the worker they are (the first name found in the object's path).
OBJECT_GROUPS = {
    "libpython": "Python interpreter",
    "_psycopg": "psycopg2 (C)",
    "libpq": "libpq",
    "libcurl": "libcurl",
    "_pycurl": "pycurl (C)",
    "_json": "json module (C)",
    "libc.": "C library",
    "libssl": "OpenSSL",
    "libcrypto": "OpenSSL",
    "_datetime": "datetime module (C)",
}


def main() -> None:
    args = parse_args()
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    signing_key = SIGNING_KEY if args.signed else None
    with tempfile.TemporaryDirectory() as directory, \
            bench_stack(DATABASE, 0, args.concurrency, args.app_workers, signing_key=signing_key) as running:
        output = Path(directory) / "callgrind.out"
        worker = start_counted_worker(running, args.concurrency, output)
        run_load(running, args.warm_up)  # imports, connections, prepared statements, caches
        control(worker.pid, "-z")
        control(worker.pid, "-i", "on")
        started = time.monotonic()
        run_load(running, args.runs)
        control(worker.pid, "-i", "off")
        seconds = time.monotonic() - started
        control(worker.pid, "-d")
        dumps = wait_for(lambda: sorted(Path(directory).glob("callgrind.out.*")), timeout=60, what="callgrind's dump")
        total, by_object = self_cost_by_object(dumps[-1].read_text())
        if args.keep_dump:
            shutil.copy(dumps[-1], args.keep_dump)
    per_workflow = total / args.runs
    print(f"\ncall worker under callgrind: {args.runs} workflows of bench-three-steps counted "
          f"({seconds:.0f} s; {args.concurrency} threads, SDK app on {args.app_workers} gunicorn processes; "
          f"{'signed calls' if args.signed else 'unsigned calls (INNGEST_INSECURE)'})")
    print(f"  instructions per workflow                {per_workflow:>14,.0f}")
    print(f"  instructions per SDK call                {per_workflow / CALLS_PER_WORKFLOW:>14,.0f}")
    print("  by shared object (self cost, share of all counted)")
    for name, count in grouped(by_object).most_common():
        print(f"    {name:38s} {count / total * 100:5.1f}%  {count / args.runs:>12,.0f} per workflow")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200, help="workflows counted (multiples of 100)")
    parser.add_argument("--warm-up", type=int, default=100, help="workflows run before counting")
    parser.add_argument("--concurrency", type=int, default=8, help="threads of the call worker (8 since the first figures, so that they compare across commits)")
    parser.add_argument("--app-workers", type=int, default=2, help="gunicorn processes serving the SDK app")
    parser.add_argument("--signed", action="store_true",
                        help="a closed stack with a signing key, as production runs: canonical, signed call bodies")
    parser.add_argument("--keep-dump", type=Path, default=None,
                        help="copy callgrind's dump there, for callgrind_annotate (Python frames show as the interpreter's C functions)")
    return parser.parse_args()


def start_counted_worker(running: Running, concurrency: int, output: Path) -> subprocess.Popen:
    """The stack's call worker, as ProductionStack starts one, under callgrind with counting off."""
    return running.stack.start_worker(
        concurrency, wrapper=["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={output}"])


def control(pid: int, *options: str) -> None:
    subprocess.run(["callgrind_control", *options, str(pid)], check=True, capture_output=True, timeout=120)


_NAMED = re.compile(r"\((\d+)\)(?: (.*))?")


def self_cost_by_object(dump: str) -> tuple[int, Counter]:
    """The dump's total and each shared object's self cost. In callgrind's format a cost line
    belongs to the current `ob=`/`fn=`, except the one after `calls=`, which is the call's
    inclusive cost (counted in the callee's own lines); names are compressed to "(id)" after
    their first use."""
    names: dict[str, str] = {}
    by_object: Counter = Counter()
    total, current, after_call = 0, "?", False
    for line in dump.splitlines():
        if line.startswith("ob="):
            current = _name(line[3:], names)
        elif line.startswith("cob="):
            _name(line[4:], names)  # a callee's object may be named first here
        elif line.startswith("totals:"):
            total = int(line.split()[1])
        elif line.startswith("calls="):
            after_call = True
        elif line[:1].isdigit() or line[:1] in "+-*":
            if after_call:
                after_call = False
                continue
            fields = line.split()
            if len(fields) >= 2:
                by_object[current] += int(fields[1])
    return total or sum(by_object.values()), by_object


def _name(field: str, names: dict[str, str]) -> str:
    match = _NAMED.fullmatch(field.strip())
    if match is None:
        return field.strip()
    number, name = match.groups()
    if name is not None:
        names[number] = name
    return names.get(number, field)


def grouped(by_object: Counter) -> Counter:
    groups: Counter = Counter()
    for path, count in by_object.items():
        name = next((label for key, label in OBJECT_GROUPS.items() if key in Path(path).name), "other")
        groups[name] += count
    return groups


if __name__ == "__main__":
    main()
