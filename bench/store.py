"""Benchmark (issues 8 and 20): the sample store at 10,000 series every 10 s, with realistic values.

    nice -n 10 .venv/bin/python bench/store.py       # --series 10000 --hours 24 --compare-points 3000

Values (bench/realistic_values.py): the exact values of nab-dev's series and of the shop
simulator's, cycled over the series; a second store gets full-precision random floats (the
old benchmark's values). Timestamps are what a daemon stamps: one time per poll, every 10 s
plus up to 50 ms of jitter, shared by the poll's series.

1. Same run, alternating poll by poll, the store of this tree and the store code of
   `--old-code` (the commit before chunks: its `SampleStore`, loaded from git, on the same
   schema) take `--compare-points` polls of n series, each poll in one transaction as a tick
   does; the new store runs the daemon's jobs (prune every 10 simulated minutes, seal every
   minute, in steps). Reported: append per poll (median), then the training read
   (`recent(keys, compare_points)` of every series: what a fit reads), alternating, medians.
2. The new store goes on to `--hours` of simulated time, sealing as the daemon does. Reported:
   the file size (database + WAL after a checkpoint) per sample held, hence a day and a week
   (the default `retention: 7d`); and the time of one seal step and one window's prune.
3. The same for random floats, over `--random-hours`.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import realistic_values
import scale_common as common

from alertd.model import Sample, make_labels
from alertd.store import Store
from alertd.store.sample_chunks import SPAN

ROOT = Path(__file__).resolve().parent.parent
T0 = 1_750_000_000.0 - 1_750_000_000.0 % SPAN
JOB_EVERY = 60  # polls between two runs of the prune job (10 minutes at 10 s)
SEAL_EVERY = 6  # polls between two runs of the seal job (a minute)


def old_sample_store(rev: str):
    """The `SampleStore` class of commit `rev`, loaded as a module of this alertd.store
    package (its imports, ..model and .series_index, are unchanged since)."""
    text = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:alertd/store/samples.py"],
                          check=True, capture_output=True, text=True).stdout
    spec = importlib.util.spec_from_loader("alertd.store._old_samples", loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "alertd.store"
    exec(compile(text, f"{rev}:alertd/store/samples.py", "exec"), module.__dict__)
    return module.SampleStore


def default_old_rev() -> str:
    added = subprocess.run(["git", "-C", str(ROOT), "log", "--diff-filter=A", "--format=%H", "--",
                            "alertd/store/sample_chunks.py"], check=True, capture_output=True, text=True)
    return added.stdout.split()[-1] + "~1"


class Feed:
    """Polls of n series: labels, keys and the values of poll k."""

    def __init__(self, n: int, values: np.ndarray, seed: int = 3):
        self.labels = [make_labels({"host": f"h{i:05d}", "dc": f"dc{i % 4}"}) for i in range(n)]
        self.values = values
        self.jitter = np.random.default_rng(seed).uniform(0, 0.05, values.shape[1])
        self.keys = None

    def ts(self, k: int) -> float:
        return T0 + k * common.INTERVAL + float(self.jitter[k % len(self.jitter)])

    def poll(self, k: int) -> list[Sample]:
        ts = self.ts(k)
        col = self.values[:, k % self.values.shape[1]].tolist()
        samples = [Sample("latency_ms", lab, ts, v) for lab, v in zip(self.labels, col)]
        if self.keys is None:
            self.keys = [s.key for s in samples]
        return samples


def append(store, samples_api, samples, keys) -> float:
    started = time.perf_counter()
    with store.atomic():
        samples_api.append(samples, "mem", keys)
    return time.perf_counter() - started


def job(store, k: int) -> tuple[float, list[float]]:
    """The daemon's jobs after poll k: prune every 10 minutes (nothing is past a week here),
    seal every minute, in steps; the seal's total time and the time of each of its steps."""
    if (k + 1) % JOB_EVERY == 0:
        with store.atomic():
            store.samples.prune(T0 - 7 * 86400)
    started, steps = time.perf_counter(), []
    while True:
        t = time.perf_counter()
        with store.atomic():
            step = store.samples.seal()
        if step < 0:
            break
        steps.append(time.perf_counter() - t)
    return time.perf_counter() - started, steps


def size(path: Path, store) -> int:
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def compare(n: int, points: int, values: np.ndarray, old_cls, runs: int, tmp: Path) -> dict:
    feed = Feed(n, values)
    new = Store(tmp / "new.db")
    old = Store(tmp / "old.db")
    old_api = old_cls(old.db)
    t_new, t_old, jobs, seal_steps = [], [], [], []
    for k in range(points):
        samples = feed.poll(k)
        if k % 2:
            t_new.append(append(new, new.samples, samples, feed.keys))
            t_old.append(append(old, old_api, samples, feed.keys))
        else:
            t_old.append(append(old, old_api, samples, feed.keys))
            t_new.append(append(new, new.samples, samples, feed.keys))
        if (k + 1) % SEAL_EVERY == 0:
            took, steps = job(new, k)
            jobs.append(took)
            seal_steps += steps
    keys = feed.keys
    r_new, r_old = [], []
    for _ in range(runs):
        for name, api, out in (("old", old_api, r_old), ("new", new.samples, r_new)):
            started = time.perf_counter()
            got = api.recent(keys, points)
            out.append(time.perf_counter() - started)
            assert len(got) == n and all(v[2] == points for v in got.values()), name
    same = all(np.array_equal(a[1], b[1]) for a, b in zip(old_api.recent(keys[:50], points).values(),
                                                         new.samples.recent(keys[:50], points).values()))
    old_bytes = size(tmp / "old.db", old) / (n * points)
    old.close()
    (tmp / "old.db").unlink()
    return {"store": new, "feed": feed, "append_new_ms": statistics.median(t_new) * 1000,
            "append_old_ms": statistics.median(t_old) * 1000, "read_new_s": statistics.median(r_new),
            "read_old_s": statistics.median(r_old), "job_s": jobs, "seal_steps": seal_steps,
            "old_bytes": old_bytes, "same": same}


def go_on(store, path: Path, feed: Feed, start: int, polls: int) -> dict:
    """More polls into `store` up to `polls`, with the prune job; the size per sample at the end."""
    appends, jobs, steps = [], [], []
    for k in range(start, polls):
        appends.append(append(store, store.samples, feed.poll(k), feed.keys))
        if (k + 1) % SEAL_EVERY == 0:
            took, s = job(store, k)
            jobs.append(took)
            steps += s
    held = store.samples.count()
    total = size(path, store)
    try:
        parts = dict(store.db.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall())
    except Exception:  # SQLite built without dbstat
        parts = {}
    parts["(free pages)"] = store.db.execute("PRAGMA freelist_count").fetchone()[0] * store.db.execute(
        "PRAGMA page_size").fetchone()[0]
    head = store.db.execute("SELECT count(*) FROM samples").fetchone()[0]
    started = time.perf_counter()
    with store.atomic():
        pruned = store.samples.prune(T0 + SPAN, limit=20_000)  # one window, as one step of the job
    prune_s = time.perf_counter() - started
    return {"append_ms": statistics.median(appends) * 1000 if appends else float("nan"), "samples": held,
            "head_rows": head, "bytes": total, "parts": parts, "bytes_per_sample": total / held, "jobs": jobs,
            "seal_steps": steps, "prune_s": prune_s, "pruned": pruned}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--hours", type=float, default=24.0, help="simulated time of the size run")
    parser.add_argument("--random-hours", type=float, default=24.0)
    parser.add_argument("--compare-points", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=3, help="training reads of each store")
    parser.add_argument("--old-code", default=None, help="the commit whose SampleStore to compare with")
    parser.add_argument("--nab", default=None, help="nab-dev's folder (default: data/nab-dev or the shared copy)")
    args = parser.parse_args()
    n = args.series
    polls = int(args.hours * 3600 / common.INTERVAL)
    rev = args.old_code or default_old_rev()
    print(common.machine())
    sources = realistic_values.sources(args.nab)
    print(f"values: {len(sources)} series ({sum(1 for s, _ in sources if s.startswith('nab:'))} of nab-dev, "
          f"{sum(1 for s, _ in sources if s.startswith('shop:'))} of the shop simulator) cycled over {n}")
    values = realistic_values.series_values(n, max(polls, args.compare_points), args.nab)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        c = compare(n, args.compare_points, values, old_sample_store(rev), args.runs, tmp)
        print(f"same run, old store code = {rev} ({subprocess.run(['git', '-C', str(ROOT), 'rev-parse', '--short', rev], capture_output=True, text=True).stdout.strip()}), "
              f"{args.compare_points} polls of {n} series alternating:")
        print(f"  append of a {n}-series poll (median): new {c['append_new_ms']:.1f} ms, old {c['append_old_ms']:.1f} ms "
              f"(new/old {c['append_new_ms'] / c['append_old_ms']:.2f})")
        print(f"  training read, {args.compare_points} points x {n} series (median of {args.runs}): new "
              f"{c['read_new_s']:.2f} s, old {c['read_old_s']:.2f} s (new/old {c['read_new_s'] / c['read_old_s']:.2f}); "
              f"same values: {c['same']}")
        print(f"  old store: {c['old_bytes']:.1f} bytes a sample")
        if polls > args.compare_points:  # (a shorter run is all head and free pages: no size to report)
            d = go_on(c["store"], tmp / "new.db", c["feed"], args.compare_points, polls)
            report("realistic values", n, args.hours, d, c["job_s"] + d["jobs"], c["seal_steps"] + d["seal_steps"])
        c["store"].close()
        rnd_polls = int(args.random_hours * 3600 / common.INTERVAL)
        if rnd_polls:
            rstore = Store(tmp / "random.db")
            r = go_on(rstore, tmp / "random.db", Feed(n, realistic_values.random_values(n, 2048)), 0, rnd_polls)
            rstore.close()
            report("random floats (100 + normal(0, 5), full precision)", n, args.random_hours, r, r["jobs"], r["seal_steps"])
    print("end of run: " + common.machine())


def report(label: str, n: int, hours: float, d: dict, jobs: list, steps: list) -> None:
    day = 86400 / common.INTERVAL * n
    print(f"{label}: {n} series every 10 s for {hours:g} simulated hours, seal job every minute:")
    print(f"  store: {d['bytes'] / 2**20:.0f} MiB for {d['samples']:,} samples ({d['head_rows']:,} of them in the head) "
          f"= {d['bytes_per_sample']:.2f} bytes a sample; a day {day * d['bytes_per_sample'] / 2**30:.2f} GiB, "
          f"a week (the default retention) {7 * day * d['bytes_per_sample'] / 2**30:.2f} GiB")
    big = sorted(((v, k) for k, v in d["parts"].items() if v > d["bytes"] / 100), reverse=True)
    print("  of which: " + ", ".join(f"{k} {v / 2**20:.0f} MiB" for v, k in big))
    if jobs:
        sealing = [j for j in jobs if j > 0.05]
        print(f"  seal job: median {statistics.median(jobs) * 1000:.1f} ms, the runs that sealed a window: median "
              f"{statistics.median(sealing) if sealing else 0:.2f} s in steps of median "
              f"{statistics.median(steps) * 1000 if steps else 0:.0f} ms, max {max(steps) * 1000 if steps else 0:.0f} ms")
    print(f"  prune of one window: {d['prune_s'] * 1000:.0f} ms ({d['pruned']:,} samples)")


if __name__ == "__main__":
    main()
