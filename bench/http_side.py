"""Benchmark: what the pages cost, in server time and in event-loop stalls (they share the
loop with the ticks).

    .venv/bin/python bench/http_side.py [--series 10000] [--incidents 1000] [--ticks 200] [--runs 15]

Builds a daemon with an in-memory source of n series (bench/tick.py's `bench_memory`, every
n/incidents-th series jumping after tick 45) and two rules: `latency_high`, a threshold over
every series that fires one incident per jumping series (1,000 open incidents at 10,000
series), and `latency_z`, a zscore rule over the half of the series that never jump (the
detector cost of a real rule, without incidents). Runs `--ticks` ticks into a real SQLite
store, adds 100 silences (for the silences list), logs a client in, then requests each page
`--runs` times over a real socket from another thread. Per path it reports the median server
time (the handler, measured inside the server: parsing to the response, no network), the
median wall time seen by the client, the page size, and the longest stall of the event loop
meanwhile (a probe task sleeping 1 ms at a time records how late it wakes: how long a tick
could have been held up).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
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
from alertd.http.server import HttpServer  # noqa: E402
from alertd.log import configure  # noqa: E402
from alertd.plugins import load_registry  # noqa: E402
from alertd.routing.silences import SilenceService  # noqa: E402

TOKEN = "bench-token-0123456789abcdef"
CONFIG = """\
http: {{listen: "127.0.0.1:0", token: "{token}"}}
sources:
  mem: {{type: bench_memory, cron: "0 0 1 1 *", series: {n}, anomalous_every: {every}, backfill: false}}
rules:
  - name: latency_high
    source: mem
    series: latency_ms
    detector: {{type: threshold, above: 300, clear_above: 250}}
    severity: critical
    annotations: {{summary: "latency {{{{ $value | humanize }}}} ms on {{{{ $labels.host }}}}"}}
  - name: latency_z
    source: mem
    series: latency_ms{{dc=~"dc1|dc3"}}
    detector: {{type: zscore, window: 30, threshold: 6, min_history: 10}}
    for: 10s
receivers:
  sink: [{{type: console, stream: stderr}}]
routes: {{receiver: sink, group_by: [host], group_wait: 1h, group_interval: 1h}}
"""
PATHS = ["/", "/incidents", "/incidents?matchers=dc%3D%22dc0%22", "/incidents/500", "/rules",
         "/rules/latency_high", "/rules/latency_z", "/silences", "/silences/preview?matchers=dc%3D%22dc2%22",
         "/metrics", "/api/v1/rules"]
SILENCES = 100  # on the list page: 96 on one host each, 4 on a whole dc (each counted against every open incident)


def run(n: int, incidents: int, ticks: int, runs: int) -> dict:
    registry = load_registry(entrypoints=False)
    registry.add_module(tick, "bench", "bench_memory")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "alertd.yaml"
        path.write_text(CONFIG.format(n=n, every=max(1, n // incidents), token=TOKEN))
        config = load_config(path, registry, environ={})
        clock = FakeClock()
        result = {"paths": {}}
        server_times: dict[str, list[float]] = {}
        original = HttpServer._respond

        async def timed_respond(self, request):
            started = time.perf_counter()
            try:
                return await original(self, request)
            finally:
                server_times.setdefault(request.target, []).append(time.perf_counter() - started)

        HttpServer._respond = timed_respond

        async def main():
            daemon = Daemon(config, registry, store_path=Path(tmp) / "bench.db", clock=clock)
            await daemon.open_http()
            await daemon.start()
            for _ in range(ticks):
                clock.advance(5)
                daemon.engine.ingest("mem", await daemon.sources["mem"].collect())
            result["open_incidents"] = len(daemon.engine.tracker.open)
            silences = SilenceService(daemon.store, clock)
            every = max(1, n // incidents)
            for k in range(SILENCES):
                matchers = [f'dc="dc{k}"'] if k < 4 else [f'host="h{(k * every) % n:05d}"', 'rule="latency_high"']
                silences.add(matchers, duration=86400, author="bench", comment="bench")
            url = f"http://127.0.0.1:{daemon.web.port}"
            stalls: dict[str, list[float]] = {p: [] for p in PATHS}
            current = {"path": None}

            async def probe():
                loop = asyncio.get_running_loop()
                while True:
                    before = loop.time()
                    await asyncio.sleep(0.001)
                    if current["path"]:
                        stalls[current["path"]].append(loop.time() - before - 0.001)

            failed = []

            def client():
                try:
                    measure()
                except BaseException as exc:  # reported on the loop's side
                    failed.append(exc)

            def measure():
                with httpx.Client(base_url=url, timeout=120) as c:
                    page = c.get("/login")
                    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
                    c.post("/login", data={"csrf": csrf, "name": "bench", "token": TOKEN})
                    for p in PATHS:
                        server_times.pop(p, None)
                        current["path"] = p
                        walls = []
                        for _ in range(runs):
                            started = time.perf_counter()
                            r = c.get(p)
                            walls.append(time.perf_counter() - started)
                            assert r.status_code == 200, (p, r.status_code, r.text[:200])
                        current["path"] = None
                        result["paths"][p] = {"wall_ms": statistics.median(walls) * 1000,
                                              "server_ms": statistics.median(server_times[p]) * 1000,
                                              "kib": len(r.content) / 1024}

            prober = asyncio.create_task(probe())
            thread = threading.Thread(target=client)
            thread.start()
            while thread.is_alive():
                await asyncio.sleep(0.01)
            prober.cancel()
            if failed:
                raise failed[0]
            for p in PATHS:
                result["paths"][p]["stall_ms"] = max(stalls[p], default=0.0) * 1000
            await daemon.drain()

        try:
            asyncio.run(main())
        finally:
            HttpServer._respond = original
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, nargs="+", default=[10000])
    parser.add_argument("--incidents", type=int, default=1000)
    parser.add_argument("--ticks", type=int, default=200)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    configure("error", json_lines=True, stream=open(os.devnull, "w"))
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, load average {os.getloadavg()[0]:.2f} at the start")
    for n in args.series:
        r = run(n, args.incidents, args.ticks, args.runs)
        print(f"\n{n} series, {r['open_incidents']} open incidents, medians of {args.runs} requests")
        print(f"{'path':<42} {'server ms':>10} {'client ms':>10} {'KiB':>6} {'max loop stall ms':>18}")
        for p, v in r["paths"].items():
            print(f"{p:<42} {v['server_ms']:>10.1f} {v['wall_ms']:>10.1f} {v['kib']:>6.0f} {v['stall_ms']:>18.1f}")
    print(f"# load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
