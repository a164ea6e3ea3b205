"""Benchmark (issue 20): what scoring a poll in slices costs in CPU, against one call per poll.

    .venv/bin/python bench/slices_cpu.py --detector pyod       # or surprise; --series 10000 --polls 50

Two identical daemons on copies of one store (bench/scale_common.py: one source of n series
every 10 s, 160 polls of history, the model fitted and restored) get the same polls, taking
turns poll by poll on fake clocks: one scores each poll in slices (alertd/engine/slices.py),
the other in one slice (HEAD_FROM above the poll, as before issue 20). Both see the same load
at the same moments, so the ratio of their CPU per poll (process time of `Daemon.poll`, all
threads) is what slicing costs, whatever else runs on the machine. Also printed: whether
they ended with the same open incidents (they must: slicing changes no verdict).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import asyncio  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import scale_common as common  # noqa: E402

DETECTORS = {"pyod": None, "surprise": "{type: surprise}"}
WARMUP = 8


async def compare(base: Path, polls: int) -> dict:
    from alertd.clock import FakeClock
    from alertd.config.load import load_config
    from alertd.daemon.core import Daemon
    from alertd.engine import slices

    reg = common.registry()
    start, daemons = time.time(), {}
    for mode in ("sliced", "whole"):
        directory = base.parent / mode
        shutil.copytree(base, directory)
        clock = FakeClock(start)
        daemon = Daemon(load_config(directory / "alertd.yaml", reg, environ={}), reg,
                        store_path=directory / "alertd.db", clock=clock)
        await daemon.start()
        daemon.scheduler.pause()  # the bench drives the polls
        daemons[mode] = (daemon, clock)
    head_from = slices.HEAD_FROM
    cpu: dict[str, list[float]] = {"sliced": [], "whole": []}
    for i in range(WARMUP + polls):
        for mode, (daemon, clock) in daemons.items():
            slices.HEAD_FROM = head_from if mode == "sliced" else 10 ** 12
            clock.advance(common.INTERVAL)
            c0 = time.process_time()
            await daemon.poll("mem")
            if i >= WARMUP:
                cpu[mode].append(time.process_time() - c0)
    slices.HEAD_FROM = head_from
    open_incidents = {mode: sorted((i.fingerprint, i.state) for i in d.engine.tracker.open.values())
                      for mode, (d, _) in daemons.items()}
    for daemon, _ in daemons.values():
        await daemon.drain()
    return {"sliced_ms": statistics.median(cpu["sliced"]) * 1000, "whole_ms": statistics.median(cpu["whole"]) * 1000,
            "same_incidents": open_incidents["sliced"] == open_incidents["whole"],
            "open": len(open_incidents["sliced"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--polls", type=int, default=50)
    parser.add_argument("--detector", choices=sorted(DETECTORS), default="pyod")
    args = parser.parse_args()
    print(common.machine())
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        base.mkdir()
        common.build(base, args.series, 160, detector=DETECTORS[args.detector])
        common.quiet_logs()
        r = asyncio.run(compare(base, args.polls))
    print(f"{args.detector}, {args.series} series, medians of {args.polls} polls each, taking turns: CPU per poll "
          f"{r['sliced_ms']:.1f} ms in slices, {r['whole_ms']:.1f} ms in one slice (ratio "
          f"{r['sliced_ms'] / r['whole_ms']:.3f}); same open incidents at the end: {r['same_incidents']} ({r['open']})")
    print("end of run: " + common.machine())


if __name__ == "__main__":
    main()
