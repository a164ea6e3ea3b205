"""Benchmark: how long `alertd` commands take and how much memory they use.

    .venv/bin/python bench/cli.py [--runs 7] [--root PATH [--root PATH ...]]

Each command runs `--runs` times as a fresh `python -m alertd.cli.entry` process in a copy of
the demo site (alertd.yaml, plugins/, an empty store) made from each `--root` (default: this
checkout; give another checkout too, e.g. a `git worktree` of an older commit, to compare
with it, run by the same Python: the checkouts take turns, run by run, so that both see the
same load). It prints the median wall time, the median peak RSS (the child's ru_maxrss) and
whether PyOD was imported, as one JSON line per command and checkout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = (["--help"], ["validate"], ["incidents"], ["silence", "list"], ["notifications", "--attempts"])
PROBE = ("import runpy, sys, atexit; "
         "atexit.register(lambda: print('PYOD' if 'pyod' in sys.modules else 'NOPYOD', file=sys.stderr)); "
         "sys.argv = ['alertd', *sys.argv[1:]]; runpy.run_module('alertd.cli.entry', run_name='__main__')")


def site(root: Path, where: Path) -> None:
    shutil.copy(root / "alertd.yaml", where / "alertd.yaml")
    shutil.copytree(root / "plugins", where / "plugins")
    subprocess.run([sys.executable, "-c", "from alertd.store import Store; Store('alertd.db').close()"],
                   cwd=where, check=True, env={**os.environ, "PYTHONPATH": str(root)})


def once(root: Path, where: Path, args: list[str]) -> tuple[float, float, bool]:
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", PROBE, *args], cwd=where, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(root)})
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    err = proc.stderr.read().decode()
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"alertd {' '.join(args)} failed: {err[-500:]}")
    return wall, usage.ru_maxrss / 1024, "NOPYOD" not in err


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--root", type=Path, action="append",
                        help="a checkout whose alertd to run (repeat to compare; default: this one)")
    args = parser.parse_args()
    roots = [r.resolve() for r in (args.root or [ROOT])]
    commits = [subprocess.run(["git", "-C", str(r), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True).stdout.strip() or str(r) for r in roots]
    with tempfile.TemporaryDirectory(prefix="alertd-cli-") as tmp:
        sites = [Path(tmp) / str(i) for i in range(len(roots))]
        for root, where in zip(roots, sites):
            where.mkdir()
            site(root, where)
        for command in COMMANDS:
            runs: list[list] = [[] for _ in roots]
            for _ in range(args.runs):  # the checkouts take turns: the same load for each
                for i, (root, where) in enumerate(zip(roots, sites)):
                    runs[i].append(once(root, where, command))
            for commit, got in zip(commits, runs):
                print(json.dumps({
                    "command": "alertd " + " ".join(command), "commit": commit, "runs": args.runs,
                    "median_seconds": round(statistics.median(r[0] for r in got), 3),
                    "median_peak_rss_mib": round(statistics.median(r[1] for r in got), 1),
                    "imports_pyod": any(r[2] for r in got),
                    "machine": f"{platform.machine()} {os.cpu_count()} cpus, {platform.python_version()}",
                    "loadavg": round(os.getloadavg()[0], 2)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
