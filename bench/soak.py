"""Benchmark: a 24-hour soak of the shop at 1,000 series in accelerated time.

    PYTHONPATH=. .venv/bin/python bench/soak.py [--hours 24] [--series 1000] [--every 60]

The real engine, store (SQLite in a temp dir), router and dispatcher run in this process on a
fake clock: every `--every` simulated seconds the shop simulator is polled (one sample per
series), the tick runs, the dispatcher delivers to a real local webhook receiver over HTTP,
and the daemon's housekeeping (fits, silences) and pruning (`retention: 6h`) run on their
schedules. The shop's injected incidents (payment outage, traffic spike, latency, stock-out,
collapse, repeating every 6 shop hours) keep incidents firing and resolving all day.

Every simulated hour it samples the process's RSS and open file descriptors
(/proc/self/fd); it reports first, last, max and the least-squares slope per simulated hour
after the first hour (the warm-up fills windows and caches), and that the outbox is drained.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from servers import RecordingHTTPServer  # noqa: E402

from alertd.clock import FakeClock  # noqa: E402
from alertd.config.load import load_config  # noqa: E402
from alertd.daemon.core import Daemon  # noqa: E402
from alertd.log import configure  # noqa: E402
from alertd.plugins import load_registry  # noqa: E402

CONFIG = """\
http: {{enabled: false}}
retention: 6h
sources:
  shop:
    type: shop_sim
    every: {every}s
    step: {every}s
    backfill: false
    regions: {regions}
    providers: {providers}
    skus: {skus}
rules:
  - {{name: payment_down, source: shop, series: 'payment_success_ratio{{provider=~".+"}}',
      detector: {{type: threshold, below: 0.9}}, for: 2m, severity: critical}}
  - {{name: stock_out, source: shop, series: 'stock_level{{sku=~".+"}}', detector: {{type: threshold, below: 1}}}}
  - {{name: orders_anomaly, source: shop, series: 'orders_per_minute{{region=~".+"}}',
      detector: {{type: zscore, window: 60, threshold: 6}}, for: 5m}}
  - {{name: latency_high, source: shop, series: checkout_latency_p95_ms, detector: {{type: threshold, above: 800}}}}
receivers:
  hook: [{{type: webhook, url: "{hook}/hook"}}]
routes: {{receiver: hook, group_by: [rule], group_wait: 30s, group_interval: 5m, repeat_interval: 4h}}
"""


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (x, y) points."""
    if len(points) < 2:
        return 0.0
    mx = statistics.fmean(x for x, _ in points)
    my = statistics.fmean(y for _, y in points)
    den = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / den if den else 0.0


def config_text(series: int, every: int, hook: str) -> str:
    regions, providers = [f"r{i}" for i in range(10)], [f"p{i}" for i in range(8)]
    skus = [f"sku-{i}" for i in range(max(1, series - len(regions) - len(providers) - 2))]
    return CONFIG.format(every=every, hook=hook, regions=json.dumps(regions),
                         providers=json.dumps(providers), skus=json.dumps(skus))


async def soak(hours: float, series: int, every: int, workdir: Path, web: RecordingHTTPServer) -> dict:
    path = workdir / "alertd.yaml"
    path.write_text(config_text(series, every, web.url))
    registry = load_registry(entrypoints=False)
    config = load_config(path, registry, environ={})
    clock = FakeClock(1_750_000_000.0)
    daemon = Daemon(config, registry, store_path=workdir / "alertd.db", clock=clock)
    await daemon.open()
    n_series = len(daemon.sources["shop"].series)
    samples, delivered, ticks = [], 0, 0
    started, end = time.perf_counter(), clock.now() + hours * 3600
    next_prune = next_sample = clock.now()
    while clock.now() < end:
        await daemon.poll("shop")  # includes the housekeeping that follows each poll
        await daemon.pass_once()
        ticks += 1
        if clock.now() >= next_prune:
            await daemon.prune()
            next_prune += 600
        if clock.now() >= next_sample:
            delivered += len(web.requests)
            web.requests.clear()  # the receiver shares this process: keep only the count
            gc.collect()
            samples.append(((clock.now() - (end - hours * 3600)) / 3600, rss_mib(), open_fds()))
            next_sample += 3600
        clock.advance(every)
    for _ in range(100):  # drain: deliver what is due, stepping through group timers
        await daemon.pass_once()
        if daemon.store.outbox.pending_count() == 0:
            break
        clock.advance(30)
    pending = daemon.store.outbox.pending_count()
    incidents = daemon.store.db.execute("SELECT COUNT(*) FROM incidents WHERE fired_at IS NOT NULL").fetchone()[0]
    integrity = daemon.store.db.execute("PRAGMA integrity_check").fetchone()[0]
    gc.collect()
    samples.append(((clock.now() - (end - hours * 3600)) / 3600, rss_mib(), open_fds()))
    await daemon.drain()
    delivered += len(web.requests)
    steady = [s for s in samples if s[0] >= 1.0]
    rss, fds = [s[1] for s in samples], [s[2] for s in samples]
    return {
        "series": n_series, "simulated_hours": hours, "ticks": ticks, "samples": ticks * n_series,
        "incidents_fired": incidents, "notices_delivered": delivered, "outbox_pending_at_end": pending,
        "integrity_check": integrity, "wall_seconds": round(time.perf_counter() - started, 1),
        "rss_mib": {"first": round(rss[0], 1), "last": round(rss[-1], 1), "max": round(max(rss), 1),
                    "slope_per_hour_after_1h": round(slope([(h, r) for h, r, _ in steady]), 3)},
        "open_fds": {"first": fds[0], "last": fds[-1], "max": max(fds),
                     "slope_per_hour_after_1h": round(slope([(h, f) for h, _, f in steady]), 3)},
        "hourly_rss_mib": [round(r, 1) for _, r, _ in samples],
        "hourly_open_fds": [f for _, _, f in samples],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=24)
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--every", type=int, default=60, help="simulated seconds between polls")
    args = parser.parse_args()
    configure("warning", json_lines=False)
    with tempfile.TemporaryDirectory(prefix="alertd-soak-") as tmp, RecordingHTTPServer() as web:
        result = asyncio.run(soak(args.hours, args.series, args.every, Path(tmp), web))
    print(json.dumps({"machine": f"{platform.machine()} {os.cpu_count()} cpus, {platform.python_version()}",
                      "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                      "loadavg": [round(x, 2) for x in os.getloadavg()], **result}))
    return 0 if result["outbox_pending_at_end"] == 0 and result["integrity_check"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
