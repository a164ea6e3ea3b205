"""Benchmark (issue 8): the sample store at 10,000 series every 10 s, with retention.

    .venv/bin/python bench/store.py            # --series 10000 --hours 2 --retention 1h --runs 3

Appends one poll of n samples per simulated 10 s (`SampleStore.append` in one transaction per
poll, as a tick does) for `--hours` of simulated time, and prunes every 10 simulated minutes
with `--retention` (as the daemon's prune job does). Reports samples appended per second
(median over polls), the prune time, and the file size (database + WAL after a checkpoint)
once retention has been reached: pruned pages are reused, so the size stays flat, and the
size per retained sample gives the size for any retention, e.g. the default week.
Incident updates per second are `bench/routing.py`'s figures (the same store, through the
alert state machine).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import scale_common as common

from alertd.model import Sample, make_labels
from alertd.store import Store


def run(n: int, hours: float, retention: float) -> dict:
    labels = [make_labels({"host": f"h{i:05d}", "dc": f"dc{i % 4}"}) for i in range(n)]
    rng = np.random.default_rng(1)
    polls = int(hours * 3600 / common.INTERVAL)
    prune_every = int(600 / common.INTERVAL)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "alertd.db"
        store = Store(path)
        t0 = 1_750_000_000.0
        rates, prunes, sizes = [], [], []
        for k in range(polls):
            ts = t0 + k * common.INTERVAL
            values = (100 + rng.normal(0, 5, n)).tolist()
            samples = [Sample("latency_ms", lab, ts, v) for lab, v in zip(labels, values)]
            keys = [s.key for s in samples]
            started = time.perf_counter()
            with store.atomic():
                store.samples.append(samples, "mem", keys)
            rates.append(n / (time.perf_counter() - started))
            if (k + 1) % prune_every == 0:
                started = time.perf_counter()
                store.samples.prune(ts - retention)
                prunes.append(time.perf_counter() - started)
                if (k + 1) * common.INTERVAL > retention:
                    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                    sizes.append(sum(p.stat().st_size for p in Path(tmp).glob("alertd.db*")))
        rows = store.db.execute("SELECT COUNT(*) FROM samples").fetchone()[0]
        store.close()
    return {"append_per_s": statistics.median(rates), "prune_ms": statistics.median(prunes) * 1000,
            "size_mib": sizes[-1] / 2**20, "size_first_mib": sizes[0] / 2**20, "rows": rows,
            "bytes_per_sample": sizes[-1] / rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--retention", default="1h")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    from alertd.durations import parse_duration

    retention = parse_duration(args.retention)
    print(common.machine())
    runs = [run(args.series, args.hours, retention) for _ in range(args.runs)]
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    n = args.series
    week = 7 * 86400 / common.INTERVAL * n
    print(f"{n} series every 10 s for {args.hours:g} simulated hours, retention {args.retention}, prune every "
          f"10 min (medians of {args.runs} runs):")
    print(f"  appended: {med['append_per_s']:,.0f} samples/s (one transaction per poll of {n})")
    print(f"  prune: {med['prune_ms']:.0f} ms per run (10 minutes of samples)")
    print(f"  store once retention is reached: {med['size_first_mib']:.0f} MiB at first, {med['size_mib']:.0f} MiB "
          f"at the end ({med['rows']:,.0f} samples kept, {med['bytes_per_sample']:.1f} bytes per sample)")
    print(f"  so a week of retention (the default) at {n} series: {week:,.0f} samples = "
          f"{week * med['bytes_per_sample'] / 2**30:.1f} GiB; one day: "
          f"{week / 7 * med['bytes_per_sample'] / 2**30:.1f} GiB")
    print("end of run: " + common.machine())


if __name__ == "__main__":
    main()
