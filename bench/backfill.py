"""Benchmark: a start-up back-fill of many series, and what it does to the event loop.

    .venv/bin/python bench/backfill.py [--series 1000] [--every 10] [--runs 3]

A source of `--series` series with history every `--every` seconds (a Prometheus of a fleet),
one rule with the default detector `surprise`, which reads 10,080 points of each series: the
daemon back-fills 1.2 x 10,080 points of every series at start-up (alertd/daemon/backfill.py).
Each run is a fresh process on a fresh store that runs the real `Daemon.backfill()` while a
task on the same loop measures how late it wakes (every 10 ms); reported: the back-fill's
wall time, the calls made to the source, the largest call, the loop's longest stall, and
the peak RSS above the start. `--old` plans the chunks as before (10,000 points of every
series a call, ingested at once); the default is the current plan (about CALL_SAMPLES
samples a call, in pieces).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from catch_up import peak_rss_mib, rss_mib  # noqa: E402

from alertd import Sample, Source, make_labels  # noqa: E402

CONFIG = """\
sources:
  fleet: {{type: bench_fleet, every: {every}s}}
rules:
  - name: orders_typical
    source: fleet
    series: orders
    detector: {{type: surprise}}
receivers:
  rec: [{{type: console}}]
"""


class Fleet(Source):
    """`series` series of orders, a point every `every` seconds over any range asked."""

    type_name = "bench_fleet"
    series = 1000
    calls: list = []

    @dataclass(frozen=True)
    class Params:
        pass

    async def collect(self):
        return []

    async def backfill(self, start, end):
        step = self.context.interval
        first = start + (-start % step)
        n = int((end - first) // step) + (1 if (end - first) % step else 0)
        labels = [make_labels({"host": f"h{i:05d}"}) for i in range(Fleet.series)]
        out = [Sample("orders", lab, first + j * step, 100.0 + (j + i) % 13)
               for j in range(n) if first + j * step < end for i, lab in enumerate(labels)]
        Fleet.calls.append(len(out))
        return out


def measure(series: int, every: float, old: bool) -> dict:
    import alertd.daemon.backfill as backfill
    from alertd.clock import FakeClock
    from alertd.config.load import load_config
    from alertd.daemon.core import Daemon
    from alertd.log import configure
    from alertd.testing import registry_with

    configure("warning", json_lines=True)
    if old:
        backfill.FIRST_POINTS = backfill.CHUNK_POINTS
        backfill.CALL_SAMPLES = 10**12
    Fleet.series = series
    registry = registry_with(Fleet)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "alertd.yaml"
        path.write_text(CONFIG.format(every=every))
        config = load_config(path, registry, environ={})

        async def main():
            d = Daemon(config, registry, store_path=Path(tmp) / "alertd.db", clock=FakeClock(1_750_000_000.0))
            await d.open()
            stalls, done = [], asyncio.Event()

            async def watch():
                loop = asyncio.get_running_loop()
                while not done.is_set():
                    t = loop.time()
                    await asyncio.sleep(0.01)
                    stalls.append(loop.time() - t - 0.01)

            watcher = asyncio.create_task(watch())
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            before, began = rss_mib(), time.perf_counter()
            await d.backfill()
            seconds = time.perf_counter() - began
            done.set()
            await watcher
            stored = d.store.samples.count()
            await d.drain()
            return {"seconds": seconds, "calls": len(Fleet.calls), "largest_call": max(Fleet.calls),
                    "stall_max_s": max(stalls), "peak_above_mib": peak_rss_mib() - before, "stored": stored}

        return asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--every", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--modes", nargs="+", default=["old", "now"])
    parser.add_argument("--measure", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(int(args.measure[0]), float(args.measure[1]), args.measure[2] == "old")))
        return
    results = {mode: [] for mode in args.modes}
    for _ in range(args.runs):
        for mode in results:
            out = subprocess.run([sys.executable, __file__, "--measure", str(args.series), str(args.every), mode],
                                 check=True, capture_output=True, text=True)
            results[mode].append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"# {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.2f}; {args.series} series every {args.every:g} s; "
          f"medians of {args.runs} fresh processes")
    print("| plan | samples stored | seconds | calls | largest call (samples) | longest loop stall, s | peak RSS above the start, MiB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for mode, rs in results.items():
        med = lambda key: statistics.median(r[key] for r in rs)  # noqa: E731
        print(f"| {mode} | {rs[0]['stored']:,} | {med('seconds'):.1f} | {rs[0]['calls']} | {rs[0]['largest_call']:,} | "
              f"{med('stall_max_s'):.2f} | {med('peak_above_mib'):,.0f} |")


if __name__ == "__main__":
    main()
