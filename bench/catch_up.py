"""Benchmark: the memory of a catch-up fit of the default detector (`surprise`).

    .venv/bin/python bench/catch_up.py [--series 2000] [--points 10080] [--runs 3] [--store DIR]
                                       [--replay-points 2000000 5000000 ...]

A daemon that starts without a saved model (a first start on an old store, a new rule, a
model format that changed) finds every series with stored history and replays up to
`train_points` (10,080) points of each before it judges them. This builds a store of
`--series` series x `--points` points (10 s apart, sealed into chunks as the daemon's seal job
would; `--store DIR` keeps it for the next run), then measures, each in a fresh process, the
peak RSS above the process's RSS before the fit:

- `whole`: one fit over every series (what the trainer did before the plan's `history_keys`);
- `slices`: the trainer's way now, slice after slice of `REPLAY_POINTS` points (5,000,000:
  496 series at 10,080 points), each installed before the next is read; `--replay-points`
  tries other slice sizes.

Both read through the store's API (`training_set`, as the trainer's thread does) and end in
the same state (checked: the states are compared). Reports medians of `--runs` runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

SOURCE = "shop"


def keys_of(n: int) -> list[str]:
    return [f'orders{{host="h{i:05d}"}}' for i in range(n)]


def build(path: Path, series: int, points: int) -> None:
    from alertd.model import Sample, make_labels
    from alertd.store import Store

    store = Store(path)
    labels = [make_labels({"host": f"h{i:05d}"}) for i in range(series)]
    keys = keys_of(series)
    rng = np.random.default_rng(0)
    t0 = 1_750_000_000.0 - points * 10.0
    base = 100 + 50 * rng.random(series)
    for j in range(points):
        t = t0 + j * 10.0
        day = np.sin(2 * np.pi * (t % 86400) / 86400)
        values = np.round(base * (1 + 0.3 * day) + rng.normal(0, 3, series), 1).tolist()
        with store.atomic():
            store.samples.append([Sample("orders", lab, t, x) for lab, x in zip(labels, values)], SOURCE, keys,
                                 now=t)
        if j % 1000 == 999:
            store.samples.seal_all()
    store.samples.seal_all()
    store.close()


def peak_rss_mib() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def measure(path: str, series: int, mode: str) -> dict:
    """In a fresh process: the catch-up of every series, whole or in slices ("slices:N" with
    N points a slice)."""
    from alertd.default_plugins.detectors import surprise as plugin

    if mode.startswith("slices:"):
        plugin.REPLAY_POINTS = int(mode.split(":")[1])
    from alertd.engine.training_data import training_set
    from alertd.model import Batch, make_labels
    from alertd.store import StoreReader
    from alertd.testing import make_context, params_of

    keys = keys_of(series)
    labels = [make_labels({"host": f"h{i:05d}"}) for i in range(series)]
    det = plugin.Surprise(params_of(plugin.Surprise, {}), make_context())
    n = len(keys)
    # the first poll after the start: every series arrives with stored history
    det.score(Batch(keys, labels, np.full(n, 1_750_000_000.0), np.full(n, 100.0), np.zeros((n, 0)),
                    np.zeros((n, 0)), np.full(n, 10_000), np.zeros(n, bool)))
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    before, began, fits = rss_mib(), time.perf_counter(), 0
    with StoreReader(path) as reader:
        while True:
            plan = det.training_plan()
            if mode == "whole" and plan.history_keys is not None:
                plan = type(plan)(points=plan.points, every=plan.every)  # every series at once
            if fits and not plan.history_keys:
                break
            data = training_set(reader.samples, reader.incidents, "orders", keys, labels, plan.points,
                                1_750_000_000.0, plan.span, SOURCE, plan.history_keys)
            model = det.fit(data)
            del data
            det.install(model)
            del model
            fits += 1
            if mode == "whole":
                break
    seconds = time.perf_counter() - began
    order = np.fromiter((det.index[k] for k in keys), dtype=np.int64, count=n)
    digest = float(np.nansum(det.state.st[order]) + np.nansum(det.state.profile[order]))
    return {"mode": mode, "fits": fits, "seconds": seconds, "rss_before_mib": before,
            "peak_above_mib": peak_rss_mib() - before, "pending": len(det.pending), "digest": digest}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=2000)
    parser.add_argument("--points", type=int, default=10080)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--store", help="build the store in this directory, or reuse the one built there")
    parser.add_argument("--replay-points", type=int, nargs="*", default=[],
                        help="also measure slices of these many points (REPLAY_POINTS)")
    parser.add_argument("--measure", nargs=3, metavar=("STORE", "SERIES", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure[0], int(args.measure[1]), args.measure[2])))
        return
    tmp = None
    if args.store:
        Path(args.store).mkdir(parents=True, exist_ok=True)
        path = Path(args.store) / f"catch_up_{args.series}x{args.points}.db"
    else:
        tmp = tempfile.TemporaryDirectory()
        path = Path(tmp.name) / "catch_up.db"
    if not path.exists():
        began = time.perf_counter()
        build(path, args.series, args.points)
        print(f"# built {path} in {time.perf_counter() - began:.0f} s", file=sys.stderr)
    results = {"whole": [], "slices": [], **{f"slices:{n}": [] for n in args.replay_points}}
    for _ in range(args.runs):
        for mode in results:
            out = subprocess.run([sys.executable, __file__, "--measure", str(path), str(args.series), mode],
                                 check=True, capture_output=True, text=True)
            results[mode].append(json.loads(out.stdout.strip().splitlines()[-1]))
    digests = {r["digest"] for rs in results.values() for r in rs}
    print(f"# {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.2f}; {args.series} series x {args.points} points; "
          f"medians of {args.runs} fresh processes; same final state in every run: {len(digests) == 1}")
    print("| catch-up | fits | peak RSS above the start, MiB | seconds |")
    print("|---|---:|---:|---:|")
    for mode, rs in results.items():
        assert all(r["pending"] == 0 for r in rs)
        print(f"| {mode} | {rs[0]['fits']} | {statistics.median(r['peak_above_mib'] for r in rs):,.0f} | "
              f"{statistics.median(r['seconds'] for r in rs):.1f} |")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
