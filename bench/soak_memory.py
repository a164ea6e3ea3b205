"""Benchmark: where the real-time soak's memory goes, on a fake clock, in one process.

    .venv/bin/python bench/soak_memory.py [--warm 30] [--hours 5] [--tracemalloc] [--root CHECKOUT]

The daemon of `bench/soak_realtime.py` (the same config: the shop simulator every 2 s, the
churn source's queues and pods every 5 s, retention 2m, history_retention 10m), built in this
process on a fake clock and driven as its scheduler would (polls, prune, seal, housekeeping
every minute, the group timer and a delivery pass every second), hours of simulated time in
minutes. Prints the anonymous RSS after `--warm` simulated minutes and every simulated hour
after; with `--tracemalloc`, the allocation sites that grew most between the warm-up and the
end, by traceback. The receiver keeps nothing (it is not the daemon). `--root` runs another
checkout's alertd (a commit before a change) with this script. Not the real-time soak: what
only real time exercises (threads' timing, the real scheduler, the HTTP server) is not here.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import tempfile
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def anon_mib() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("RssAnon")) / 1024


async def drive(root: Path, warm: float, run: float, trace: bool) -> None:
    from servers import RecordingHTTPServer
    from soak_realtime import soak_config

    from alertd.clock import FakeClock
    from alertd.config.load import load_config
    from alertd.daemon.core import Daemon
    from alertd.plugins import load_registry

    with tempfile.TemporaryDirectory() as tmp, RecordingHTTPServer() as web:
        store, path = Path(tmp) / "alertd.db", Path(tmp) / "alertd.yaml"
        path.write_text(soak_config(store, 0, web.url, "2m", "10m"))
        registry = load_registry([root / "bench" / "plugins"], entrypoints=False)
        clock = FakeClock(1_750_000_000.0)
        d = Daemon(load_config(path, registry, environ={}), registry, store_path=store, clock=clock)
        await d.open()
        snapshot, t = None, 0
        while t < warm + run:
            clock.advance(1.0)
            t += 1
            if t % 2 == 0:
                await d.poll("shop")
            if t % 5 == 0:
                await d.poll("churn")
            if t % 60 == 0:
                await d.prune()
                await d.seal()
                await d.housekeeping_job()
            d.group_timer.flush_due()
            await d.delivery.run_once()
            web.requests.clear()
            if t % 10 == 0:  # fits run in the trainer's thread: let them end now and then
                for st in d.trainer.rules:
                    if st.in_flight is not None:
                        st.in_flight.exception(timeout=60)
                        await asyncio.sleep(0.01)
            if t == warm:
                gc.collect()
                if trace:
                    tracemalloc.start(25)
                    snapshot = tracemalloc.take_snapshot()
                print(f"after the warm-up ({warm / 60:g} min): anonymous RSS {anon_mib():.1f} MiB", flush=True)
            elif t > warm and (t - warm) % 3600 == 0:
                print(f"simulated hour {(t - warm) // 3600}: anonymous RSS {anon_mib():.1f} MiB", flush=True)
        gc.collect()
        if snapshot is not None:
            for stat in tracemalloc.take_snapshot().compare_to(snapshot, "traceback")[:10]:
                print(f"\n{stat.size_diff / 1024:+.1f} KiB in {stat.count_diff:+d} blocks")
                for line in stat.traceback.format()[-12:]:
                    print("   ", line)
        await d.drain()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm", type=float, default=30, help="simulated minutes before the first measurement")
    parser.add_argument("--hours", type=float, default=5, help="simulated hours measured")
    parser.add_argument("--tracemalloc", action="store_true", help="also print the sites that grew most")
    parser.add_argument("--root", default=str(ROOT), help="the checkout whose alertd is measured")
    args = parser.parse_args()
    root = Path(args.root).resolve()
    sys.path[:0] = [str(root), str(root / "bench"), str(root / "tests")]
    from alertd.log import configure

    configure("warning", json_lines=True)
    print(f"# alertd from {root}", flush=True)
    asyncio.run(drive(root, args.warm * 60, args.hours * 3600, args.tracemalloc))


if __name__ == "__main__":
    main()
