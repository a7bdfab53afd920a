"""Run every ``benchmarks/bench_*.py`` script in turn (``make bench`` calls this).

Each script prints its table and updates its own section of ``benchmarks/RESULTS.md``. A script
that fails does not stop the others; the exit status is 1 when any failed.

Usage::

    .venv/bin/python benchmarks/run_all.py                 # every benchmark, full length
    .venv/bin/python benchmarks/run_all.py --quick         # short runs, RESULTS.md untouched
    .venv/bin/python benchmarks/run_all.py -k autogen      # only scripts whose name contains it
    .venv/bin/python benchmarks/run_all.py -- --rounds 60  # pass options on to every script
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run every benchmarks/bench_*.py script.")
    parser.add_argument("--quick", action="store_true", help="pass --quick to every script")
    parser.add_argument("-k", dest="only", default="", help="run scripts whose name contains this")
    parser.add_argument("extra", nargs="*", help="options passed on to every script (after --)")
    args = parser.parse_args(argv)

    scripts = sorted(p for p in HERE.glob("bench_*.py") if args.only in p.stem)
    if not scripts:
        print(f"no benchmark matches {args.only!r} in {HERE}", file=sys.stderr)
        return 1
    failed: list[str] = []
    for script in scripts:
        command = [sys.executable, str(script), *(["--quick"] if args.quick else []), *args.extra]
        print(f"\n=== {script.name} ===", flush=True)
        started = time.perf_counter()
        code = subprocess.call(command, cwd=HERE.parent)
        print(f"=== {script.name}: exit {code} after {time.perf_counter() - started:.1f} s ===")
        if code != 0:
            failed.append(script.name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"\nall {len(scripts)} benchmark(s) ran; results in {HERE / 'RESULTS.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
