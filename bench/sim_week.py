"""Benchmark: how long `alertd backtest --sim-week` takes on a config (default: the demo's).

    .venv/bin/python bench/sim_week.py                  # alertd.yaml, 3 runs each with --jobs 1 and 2
    .venv/bin/python bench/sim_week.py --runs 5 --jobs 1 -c my.yaml

Each run is a fresh `alertd backtest --sim-week --json` process (the labelled week after 7
days of history, every rule of the config that reads the simulator); the script reports the
median wall time and CPU time (the process and its workers) per --jobs setting, the load
average around the runs (the machine may be shared), and the incident figures of the last
run, which must be the same in every run (the replay is deterministic).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def one_run(config: str, jobs: int) -> tuple[float, float, dict]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "alertd", "backtest", "--sim-week", "-c", config, "--json",
                          "--jobs", str(jobs)], check=True, capture_output=True, text=True, cwd=ROOT).stdout
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, json.loads(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--config", default=str(ROOT / "alertd.yaml"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, action="append", help="--jobs settings to time (default: 1 and 2)")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    figures = set()
    for jobs in args.jobs or [1, 2]:
        walls, cpus = [], []
        for _ in range(args.runs):
            wall, cpu, doc = one_run(args.config, jobs)
            walls.append(wall)
            cpus.append(cpu)
            figures.add(json.dumps([doc["overall"], [r["pages"] for r in doc["rules"]]], sort_keys=True))
        print(f"--jobs {jobs}: median wall {statistics.median(walls):.1f}s (runs: "
              f"{', '.join(f'{w:.1f}' for w in walls)}), median CPU {statistics.median(cpus):.1f}s; "
              f"{doc['polls']} polls, {len(doc['rules'])} rules, {doc['fits']} fits")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"the same figures in every run: {len(figures) == 1}")
    overall = doc["overall"]
    print(f"overall: {overall['labels']} labels, {overall['found']} found, {overall['pages']} pages, "
          f"{overall['false_pages']} false; precision {overall['precision']:.2f}, recall {overall['recall']:.2f}")
    return 0 if len(figures) == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
