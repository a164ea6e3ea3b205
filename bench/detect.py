"""Benchmark: the default anomaly detector on many series (scoring, fitting, model size).

    .venv/bin/python bench/detect.py [--series 10000] [--days 3] [--ticks 30]

`--series` series with a daily rhythm at 5-minute steps and `--days` of history each. The
default `pyod` detector (the one alertd.yaml uses: KNN, rule scope) is fitted once on that
history (as the trainer would, from a TrainingSet), then scores `--ticks` ticks of one new
point per series, each tick one `Detector.score(batch)` call as the engine makes it. Reports
the median and p90 milliseconds per tick and series-samples/s (fits excluded), the fit time
per series, and the model size in memory and in the store. A second part fits the same
detector with `model_scope: series` on a subset, for the per-series fit cost of that scope.
Everything runs on one core (BLAS and OpenMP threads pinned to 1).
"""

from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"  # one core, as the goal says

import argparse  # noqa: E402
import pickle  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alertd.base import PluginContext, TrainingSet  # noqa: E402
from alertd.config.schema import parse_params  # noqa: E402
from alertd.model import Batch, make_labels  # noqa: E402
from alertd.plugins import load_registry  # noqa: E402
from alertd.store import Store  # noqa: E402
from alertd.store.fitted_models import StoredModel  # noqa: E402

STEP = 300.0
T0 = 1_750_032_000.0


def history(n: int, points: int, seed: int = 0):
    """(ts, values (n, points)): daily rhythm, a per-series level and noise."""
    rng = np.random.default_rng(seed)
    ts = T0 + np.arange(points) * STEP
    hour = (ts % 86400) / 3600
    shape = 1 + 0.8 * np.exp(-0.5 * ((hour - 19) / 3) ** 2) + 0.3 * np.exp(-0.5 * ((hour - 12) / 2) ** 2)
    level = rng.uniform(20, 500, n)[:, None]
    return ts, level * shape + rng.normal(0, 1, (n, points)) * np.sqrt(level)


def make_detector(registry, **params):
    cls = registry.get("detector", "pyod")
    return cls(parse_params(cls.Params, params), PluginContext("bench", lambda: T0))


def fit(det, keys, labels, ts, values):
    data = TrainingSet(keys, labels, [ts] * len(keys), list(values), now=float(ts[-1]))
    tracemalloc.start()
    started = time.perf_counter()
    model = det.fit(data)
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return model, seconds, peak


def model_bytes_in_memory(model) -> int:
    """Arrays of the normalisation and the PyOD models' fitted arrays (a close lower bound)."""
    total = 0
    for value in vars(model.norm).values():
        total += getattr(value, "nbytes", 0)
    for m in model.models:
        for value in vars(m).values():
            total += getattr(value, "nbytes", 0)
            tree = getattr(value, "_tree", None) or (value if hasattr(value, "get_arrays") else None)
            if tree is not None and hasattr(tree, "get_arrays"):
                total += sum(a.nbytes for a in tree.get_arrays() if hasattr(a, "nbytes"))
    return total


def stored_size(det, model) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.db")
        blob = det.dump_model(model)
        store.models.save(StoredModel("bench", "pyod", det.model_version(), 0.0, 0.0, 0, 0, 0.0, len(blob), blob))
        size = store.models.load("bench").size
        store.close()
        return size


def score_ticks(det, keys, labels, ts, values, ticks: int) -> list[float]:
    n, w = len(keys), det.window
    hist = values[:, -w:].copy()
    hist_ts = np.tile(ts[-w:], (n, 1))
    rng = np.random.default_rng(1)
    times = []
    for k in range(ticks):
        now = ts[-1] + STEP * (k + 1)
        current = hist[:, -1] + rng.normal(0, 1, n)
        batch = Batch(keys, labels, np.full(n, now), current, hist, hist_ts,
                      np.full(n, 10_000, dtype=np.int64), np.zeros(n, dtype=bool))
        started = time.perf_counter()
        scores = det.score(batch)
        times.append(time.perf_counter() - started)
        assert (np.asarray(scores.status) <= 1).all()  # every series judged
        hist = np.concatenate([hist[:, 1:], current[:, None]], axis=1)
        hist_ts = np.concatenate([hist_ts[:, 1:], np.full((n, 1), now)], axis=1)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--days", type=float, default=3.0)
    parser.add_argument("--ticks", type=int, default=30)
    parser.add_argument("--series-scope", type=int, default=200, help="series for the model_scope: series fit")
    args = parser.parse_args()
    registry = load_registry([], entrypoints=False)
    n, points = args.series, int(args.days * 86400 / STEP)
    ts, values = history(n, points)
    keys = [f'orders_per_minute{{shop="{i}"}}' for i in range(n)]
    labels = [make_labels({"shop": str(i)}) for i in range(n)]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{n} series, {points} points of history each ({args.days:g} days at 5 min), one core")

    det = make_detector(registry)
    model, seconds, peak = fit(det, keys, labels, ts, values)
    det.install(model)
    times = score_ticks(det, keys, labels, ts, values, args.ticks)
    med, p90 = statistics.median(times), sorted(times)[int(0.9 * (len(times) - 1))]
    print(f"default detector (KNN, rule scope): score one tick of {n} series: median {med * 1000:.1f} ms, "
          f"p90 {p90 * 1000:.1f} ms -> {n / med:,.0f} series-samples/s")
    print(f"  fit: {seconds:.2f} s for {n} series ({seconds / n * 1000:.3f} ms per series; "
          f"{model.train_rows} training rows; {int((model.norm.period > 0).sum())} seasonal series); "
          f"peak memory during the fit {peak / 2**20:.0f} MiB")
    print(f"  model: {model_bytes_in_memory(model) / 2**20:.1f} MiB in memory, "
          f"{stored_size(det, model) / 2**20:.1f} MiB in the store "
          f"({len(pickle.dumps(model)) / n:,.0f} bytes per series)")

    m = args.series_scope
    det_s = make_detector(registry, model_scope="series")
    model_s, seconds_s, _ = fit(det_s, keys[:m], labels[:m], ts, values[:m])
    det_s.install(model_s)
    times_s = score_ticks(det_s, keys[:m], labels[:m], ts, values[:m], min(args.ticks, 10))
    med_s = statistics.median(times_s)
    print(f"model_scope: series, {m} series: fit {seconds_s / m * 1000:.1f} ms per series; score one tick "
          f"{med_s * 1000:.1f} ms ({med_s / m * 1e6:.0f} us per series: one model call each); "
          f"store {stored_size(det_s, model_s) / m / 1024:.0f} KiB per series")


if __name__ == "__main__":
    main()
