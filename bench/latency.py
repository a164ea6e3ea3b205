"""Benchmark (issue 8): from a sample arriving to the HTTP request reaching a webhook receiver.

    .venv/bin/python bench/latency.py                 # --series 100 1000 10000 --reps 40 --runs 3

A daemon (fake clock, the real engine, store, router, outbox and dispatcher) watches n
series of an in-memory source with the default `pyod` detector (a model fitted on 160 polls
of history and restored from the store), `for: 0s`, routed to a `webhook` receiver on
127.0.0.1 (a real HTTP server, tests/servers.py) with `group_by: [host]` and `group_wait: 0s`.
Each repetition makes one more series jump to 10x its level and runs one poll; the latency is
from the moment the source's samples are ready (`collect` returned) to the moment the
receiver has read the webhook request about that series (`group_interval: 1h`, so earlier
groups do not re-notify during the run; other webhooks, such as false positives of the
calibrated threshold, are sent too and can queue ahead). Every poll carries all n series, so the latency
includes the whole tick (store, score, alert) of n samples. Medians over `--runs` fresh
daemons of each run's p50 and p99.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import asyncio  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import scale_common as common  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from servers import RecordingHTTPServer  # noqa: E402


async def measure(directory: Path, reps: int, arrived: list) -> list[float]:
    from alertd.clock import FakeClock
    from alertd.config import load_config
    from alertd.daemon import Daemon

    reg = common.registry()
    clock = FakeClock(time.time())
    daemon = Daemon(load_config(directory / "alertd.yaml", reg, environ={}), reg,
                    store_path=directory / "alertd.db", clock=clock)
    await daemon.start()
    daemon.scheduler.pause()  # the bench drives the polls
    source = daemon.sources["mem"]
    for _ in range(3):  # warm caches (the first poll seeds the windows from the store)
        clock.advance(common.INTERVAL)
        await daemon.poll("mem")
    latencies, k = [], -1
    for _ in range(reps):
        k += 1
        host = f'"h{k:05d}"'.encode()  # the webhook about series k (others may be in flight)
        while any(host in body for _, body in arrived):  # already notified (a false positive)
            k += 1
            host = f'"h{k:05d}"'.encode()
        source.jump(k)
        clock.advance(common.INTERVAL)
        await daemon.poll("mem")
        while not any(host in body for _, body in arrived):  # the dispatcher task sends it
            await asyncio.sleep(0.0005)
        latencies.append(next(t for t, body in arrived if host in body) - source.collected_at)
    await daemon.drain()
    return latencies


def run(n: int, reps: int) -> dict:
    arrived: list[tuple[float, bytes]] = []

    def handler(request):
        arrived.append((time.perf_counter(), request.body))
        return 200, {}, "ok"

    with RecordingHTTPServer(handler=handler) as server, tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        common.build(directory, n, 160, receivers=f'  hook: [{{type: webhook, url: "{server.url}/hook"}}]',
                     routes="routes: {receiver: hook, group_by: [host], group_wait: 0s, group_interval: 1h}\n")
        common.quiet_logs()
        lat = asyncio.run(measure(directory, reps, arrived))
    return {"p50": common.pct(lat, 50) * 1000, "p99": common.pct(lat, 99) * 1000, "max": max(lat) * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, nargs="+", default=[100, 1000, 10_000])
    parser.add_argument("--reps", type=int, default=40)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    common.quiet_logs()
    print(common.machine())
    print(f"{'series':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}   (medians of {args.runs} runs x "
          f"{args.reps} webhooks; group_wait 0; goal p99 <= 50 ms)")
    for n in args.series:
        runs = [run(n, args.reps) for _ in range(args.runs)]
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(f"{n:>8} {med['p50']:>8.1f} {med['p99']:>8.1f} {med['max']:>8.1f}")
    print("end of run: " + common.machine())


if __name__ == "__main__":
    main()
