"""Benchmark: SIGKILL the real daemon at 50 random moments; count what was lost or duplicated.

    PYTHONPATH=. .venv/bin/python bench/crash.py [--kills 50] [--seed 1] [--max-wait 4] [--held-every 5]

Runs `alertd run` (a subprocess) on the shop simulator at 120x speed with a local webhook
receiver, kills it with SIGKILL after a random 0.2 s to `--max-wait` s, restarts it, and
after the last kill lets one more run deliver what is owed and stop with SIGTERM. Prints
incidents fired, notices delivered, lost (fired, never notified), duplicates (an
idempotency key delivered twice) and the store's `PRAGMA integrity_check` after each kill.
With `--held-every n`, every n-th kill is made to fall between a send and its commit (the
receiver holds its answer until the daemon is dead): that notice must be delivered again.
The harness is tests/crash_harness.py (the fast test runs it with 4 kills).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import crash_harness  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-wait", type=float, default=4.0)
    parser.add_argument("--held-every", type=int, default=0,
                        help="make every n-th kill fall between a send and its commit")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="alertd-crash-") as tmp:
        report = crash_harness.run(Path(tmp), args.kills, args.seed, args.max_wait,
                                   log=lambda line: print(line, flush=True), held_every=args.held_every)
    print(json.dumps({"machine": f"{platform.machine()} {os.cpu_count()} cpus, {platform.python_version()}",
                      "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                      "loadavg": [round(x, 2) for x in os.getloadavg()],
                      **report.summary(),
                      "duplicate_keys": report.duplicates}, indent=1))
    for problem in report.problems:
        print("PROBLEM:", problem)
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
