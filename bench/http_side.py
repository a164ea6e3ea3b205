"""Benchmark: what the HTTP side costs the event loop (it runs on the same loop as the ticks).

    .venv/bin/python bench/http_side.py [--series 1000 10000] [--ticks 100] [--runs 15]

Builds a daemon with one rule over n series (an in-memory source, zscore detector, real
SQLite store), runs `--ticks` ticks so every series has history, then times, as medians over
`--runs`, `GET /` (the status page) and `GET /metrics` over a real socket from another
thread. Meanwhile a probe task on the daemon's loop sleeps 1 ms at a time and records how
late it wakes: the longest stall is how long a tick could have been held up by the page.
Each size runs twice in the same process: as alertd does it (samples for the charts read in
a worker thread, on a connection of its own) and, for comparison, reading them on the loop.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import tick  # noqa: E402  (the in-memory source of bench/tick.py)

from alertd.clock import FakeClock  # noqa: E402
from alertd.config.load import load_config  # noqa: E402
from alertd.daemon.core import Daemon  # noqa: E402
from alertd.log import configure  # noqa: E402
from alertd.plugins import load_registry  # noqa: E402

CONFIG = """\
http: {{listen: "127.0.0.1:0"}}
sources:
  mem: {{type: bench_memory, cron: "0 0 1 1 *", series: {n}, backfill: false}}
rules:
  - name: latency
    source: mem
    series: latency_ms
    detector: {{type: zscore, window: 30, threshold: 6, min_history: 10}}
    for: 10s
receivers:
  null: [{{type: console, stream: stderr}}]
"""


def timed(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def run(n: int, ticks: int, runs: int, on_loop: bool = False) -> dict:
    from alertd.http import status_page

    original = status_page.read_history
    if on_loop:
        async def read_on_loop(store, keys, points):
            return store.samples.recent(keys, points)
        status_page.read_history = read_on_loop
    try:
        return _run(n, ticks, runs)
    finally:
        status_page.read_history = original


def _run(n: int, ticks: int, runs: int) -> dict:
    registry = load_registry(entrypoints=False)
    registry.add_module(tick, "bench", "bench_memory")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "alertd.yaml"
        path.write_text(CONFIG.format(n=n))
        config = load_config(path, registry, environ={})
        clock = FakeClock()
        result = {}

        async def main():
            daemon = Daemon(config, registry, store_path=Path(tmp) / "bench.db", clock=clock)
            await daemon.open_http()
            await daemon.start()
            for _ in range(ticks):
                clock.advance(5)
                daemon.engine.ingest("mem", await daemon.sources["mem"].collect())
            url = f"http://127.0.0.1:{daemon.web.port}"
            stalls = {"/": [], "/metrics": []}
            current = {"path": None}

            async def probe():
                loop = asyncio.get_running_loop()
                while True:
                    before = loop.time()
                    await asyncio.sleep(0.001)
                    if current["path"]:
                        stalls[current["path"]].append(loop.time() - before - 0.001)

            def client():
                with httpx.Client(base_url=url, timeout=60) as c:
                    current["path"] = "/"
                    result["get_page_ms"] = timed(lambda: c.get("/").raise_for_status(), runs)
                    current["path"] = "/metrics"
                    result["get_metrics_ms"] = timed(lambda: c.get("/metrics").raise_for_status(), runs)
                    current["path"] = None
                    result["page_kb"] = len(c.get("/").content) / 1024

            prober = asyncio.create_task(probe())
            thread = threading.Thread(target=client)
            thread.start()
            while thread.is_alive():
                await asyncio.sleep(0.01)
            prober.cancel()
            result["page_stall_ms"] = max(stalls["/"]) * 1000
            result["metrics_stall_ms"] = max(stalls["/metrics"]) * 1000
            await daemon.drain()
            await daemon.close()

        asyncio.run(main())
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--ticks", type=int, default=100)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    configure("error", json_lines=True, stream=open(os.devnull, "w"))
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"{'series':>8} {'charts read':>12} {'GET / ms':>9} {'max loop stall ms':>18} {'page KiB':>9} "
          f"{'GET /metrics ms':>16} {'max loop stall ms':>18}")
    for n in args.series:
        for on_loop in (False, True):
            r = run(n, args.ticks, args.runs, on_loop)
            print(f"{n:>8} {'on the loop' if on_loop else 'in a thread':>12} {r['get_page_ms']:>9.1f} "
                  f"{r['page_stall_ms']:>18.1f} {r['page_kb']:>9.0f} {r['get_metrics_ms']:>16.1f} "
                  f"{r['metrics_stall_ms']:>18.1f}")


if __name__ == "__main__":
    main()
