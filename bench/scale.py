"""Benchmark (issues 8 and 20): 10,000 or 100,000 series at a 10 s interval: steady state,
start-up, reload, and the bare PyOD reference.

    .venv/bin/python bench/scale.py                      # everything, 10,000 series
    .venv/bin/python bench/scale.py --series 1000 --real 0 --series-models 0   # a quick run
    .venv/bin/python bench/scale.py --series 100000 --store /tmp/s100k --runs 2 --ticks 30 --real 60 --series-models 0

Steps, each timed process a fresh one (so RSS and start-up are not flattered by the build):

1. build: a config (one source of n series every 10 s, one rule with the default detector,
   `surprise`, or with `--detector pyod` the former default, KNN, `model_scope: rule`) and a
   store with 160 polls of history and the fitted model (surprise: its saved state)
   persisted, made through the real daemon on a fake clock. `--saved last` (the default) fits
   once more after the last poll, so the store keeps the model as a running daemon has it
   (`surprise`: the state at the end of the history); `--saved first` keeps the first fit's
   (before issue 20: a surprise state 6 points old, whose false positives make an alert
   storm). `--store DIR` builds there, or reuses the store a run built there.
2. steady (fake clock): start the daemon on that store (time to ready: the stored model is
   restored, no warm-up), then `--ticks` polls back to back, the clock advancing 10 s per
   poll. A poll is what the scheduler runs: collect, store, score, alert, housekeeping.
   Reported: median and p99 wall time per tick, CPU seconds per tick (process time, all
   threads) divided by the 10 s interval = CPU share of one core, RSS (VmRSS) against an
   empty daemon (1 series). Then reloads through the real SIGHUP path (unchanged file; one
   rule added), and the reference: the same PyOD model's `decision_function` on the feature
   rows of the same windows the last tick scored, as series-samples/s, with alertd's end to
   end rate (series / tick median) as a ratio of it.
3. real (`--real SECONDS`): the daemon with the system clock and its real scheduler, polling
   every 10 s; CPU share = process time / wall time over the run; tick lag from
   `alertd_tick_lag_seconds`.
4. series models (`--series-models N`): the same with `model_scope: series` (one model per
   series) at N series: time to ready with N persisted per-series models.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core, as the goal says (and as bench/detect.py runs)

import time  # noqa: E402

PROCESS_START = time.perf_counter()  # before alertd is imported: start-up includes imports

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import scale_common as common  # noqa: E402


def _start(directory: Path, clock):
    from alertd.config.load import load_config
    from alertd.daemon.core import Daemon

    reg = common.registry()
    config = load_config(directory / "alertd.yaml", reg, environ={})
    return Daemon(config, reg, store_path=directory / "alertd.db", clock=clock)


async def steady(directory: Path, ticks: int, warmup: int) -> dict:
    """Start on the built store, then ticks back to back on a fake clock (see the doc)."""
    from alertd.clock import FakeClock

    common.quiet_logs()
    t0 = time.perf_counter()
    clock = FakeClock(time.time())
    daemon = _start(directory, clock)
    await daemon.start()
    daemon.scheduler.pause()  # the bench drives the polls
    ready = time.perf_counter()
    rt = daemon.engine.runtimes()[0]
    restored = bool(rt.detector.model_info())
    seen = []
    daemon.engine.observers.append(lambda _rt, batch, scores: seen.append(batch))
    wall, cpu, first, ratios = [], [], None, []
    for i in range(warmup + ticks):
        clock.advance(common.INTERVAL)
        seen.clear()
        c0, w0 = time.process_time(), time.perf_counter()
        await daemon.poll("mem")
        w1, c1 = time.perf_counter(), time.process_time()
        first = w1 - w0 if first is None else first
        if i >= warmup:
            wall.append(w1 - w0)
            cpu.append(c1 - c0)
            # the reference on this very tick's windows, right after it: both see the same load
            ref_wall, ref_cpu = _bare_pyod(rt.detector, seen[-1], runs=1)
            ratios.append((ref_wall / (w1 - w0), ref_cpu / (c1 - c0)))
    rss = common.rss_mib()
    scored = rt.state()["last_tick"]
    reference = _reference(rt.detector, seen[-1])
    reference["ratio_wall"] = statistics.median(r[0] for r in ratios)
    reference["ratio_cpu"] = statistics.median(r[1] for r in ratios)
    reloads = await _reloads(daemon, directory)
    await daemon.drain()
    n = len(rt.windows.keys)
    med = statistics.median(wall)
    return {"series": n, "ready_s": ready - t0, "ready_since_process_s": ready - PROCESS_START,
            "model_restored": restored, "first_tick_ms": first * 1000, "tick_median_ms": med * 1000, "tick_p99_ms": common.pct(wall, 99) * 1000,
            "cpu_per_tick_s": statistics.median(cpu), "cpu_mean_per_tick_s": statistics.fmean(cpu),
            "cpu_share": statistics.fmean(cpu) / common.INTERVAL, "rss_mib": rss,
            "last_tick": scored, "end_to_end_per_s": n / med, **reference, **reloads}


_KNN: dict = {}


def _reference_rows(det, batch):
    """(a fitted PyOD model, the rows it scores for `batch`). For the `pyod` detector: its own
    model and the feature rows of the batch's windows. For `surprise` (no PyOD inside): a KNN
    with the former default's settings (n_neighbors 10, mean; 20,000 training rows, as its
    max_train_rows) fitted once on 3 features, scoring one row per series of the batch."""
    import numpy as np

    n = len(batch)
    am = getattr(det, "model", None)
    if am is not None and hasattr(am, "models"):
        from alertd.detect.anomaly_model import feature_matrix

        idx = np.fromiter((am.index[k] for k in batch.keys), dtype=np.int64, count=n)
        w = det.window
        values = np.concatenate([batch.history[:, -w:], batch.values[:, None]], axis=1)
        times = np.concatenate([batch.history_ts[:, -w:], batch.ts[:, None]], axis=1)
        return am.models[0], feature_matrix(am.spec, values, times, am.norm, idx)
    if "knn" not in _KNN:
        from pyod.models.knn import KNN

        rng = np.random.default_rng(0)
        phase = rng.uniform(0, 2 * np.pi, 20_000)
        _KNN["knn"] = KNN(n_neighbors=10, method="mean").fit(
            np.column_stack([rng.normal(size=20_000), np.sin(phase), np.cos(phase)]))
    v = np.asarray(batch.values, dtype=float)
    z = (v - np.median(v)) / (np.median(np.abs(v - np.median(v))) + 1e-9)
    phase = 2 * np.pi * (np.asarray(batch.ts, dtype=float) % 86400) / 86400
    return _KNN["knn"], np.column_stack([z, np.sin(phase), np.cos(phase)])


def _bare_pyod(det, batch, runs: int) -> tuple[float, float]:
    """(wall, CPU) seconds, medians of `runs`, of a PyOD model's own `decision_function` on
    the rows of `batch` (see `_reference_rows`; rows built before timing)."""
    model, X = _reference_rows(det, batch)
    walls, cpus = [], []
    for _ in range(runs):
        w0, c0 = time.perf_counter(), time.process_time()
        model.decision_function(X)
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus)


def _reference(det, batch) -> dict:
    """The bare PyOD reference (7 runs) and the detector's own score() on the same batch."""
    n = len(batch)
    ref, _ = _bare_pyod(det, batch, runs=7)
    det_runs = []
    for _ in range(7):
        started = time.perf_counter()
        det.score(batch)
        det_runs.append(time.perf_counter() - started)
    return {"pyod_ms": ref * 1000, "pyod_per_s": n / ref, "detector_score_ms": statistics.median(det_runs) * 1000}


async def _reloads(daemon, directory: Path) -> dict:
    """Reload through the SIGHUP path: the file unchanged, then with one rule added."""
    path = directory / "alertd.yaml"
    original = path.read_text()
    unchanged = []
    for _ in range(5):
        started = time.perf_counter()
        outcome = await daemon.reload()
        unchanged.append(time.perf_counter() - started)
        assert outcome.ok, outcome.problems
    added = original.replace("receivers:", "  - {name: extra, source: mem, series: latency_ms, "
                                           "detector: {type: threshold, above: 10000}}\nreceivers:")
    changed = []
    for text in (added, original, added, original, added):
        path.write_text(text)
        started = time.perf_counter()
        outcome = await daemon.reload()
        changed.append(time.perf_counter() - started)
        assert outcome.ok, outcome.problems
    path.write_text(original)
    return {"reload_unchanged_ms": statistics.median(unchanged) * 1000,
            "reload_rule_added_ms": statistics.median(changed) * 1000}


async def real(directory: Path, seconds: float) -> dict:
    """The daemon on the system clock with its scheduler: CPU share and tick lag over `seconds`."""
    from alertd.clock import SystemClock

    common.quiet_logs()
    daemon = _start(directory, SystemClock())
    await daemon.start()
    await asyncio.sleep(common.INTERVAL + 1)  # the first scheduled poll (warm caches)
    polls0 = daemon.metrics.source_polls.labels("mem")._value.get()
    c0, w0 = time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    c1, w1 = time.process_time(), time.perf_counter()
    polls = daemon.metrics.source_polls.labels("mem")._value.get() - polls0
    lag = daemon.metrics.tick_lag.labels("mem")
    lag_sum, lag_count = lag._sum.get(), sum(b.get() for b in lag._buckets)
    rss = common.rss_mib()
    await daemon.drain()
    return {"wall_s": w1 - w0, "cpu_s": c1 - c0, "cpu_share": (c1 - c0) / (w1 - w0), "polls": polls,
            "tick_lag_mean_ms": lag_sum / max(lag_count, 1) * 1000, "rss_mib": rss}


DETECTORS = {"surprise": "{type: surprise}", "pyod": None}  # None: scale_common's pyod KNN


def _child(*args: str) -> dict:
    """Run this script's `args` step in a fresh process; its last stdout line is JSON."""
    out = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--ticks", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3, help="steady-state runs (fresh processes)")
    parser.add_argument("--real", type=float, default=120, help="seconds of real-time polling (0: skip)")
    parser.add_argument("--series-models", type=int, default=1000,
                        help="series for the model_scope: series start-up (0: skip)")
    parser.add_argument("--step", choices=["build", "steady", "real"], help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    parser.add_argument("--scope", default="rule", help=argparse.SUPPRESS)
    parser.add_argument("--detector", choices=["surprise", "pyod"], default="surprise",
                        help="the rule's detector: the default `surprise`, or the former default `pyod` (KNN)")
    parser.add_argument("--store", help="a directory to build the store in, or to reuse the one a run with the "
                                        "same --series and --saved built there (100,000 series take 10-20 minutes)")
    parser.add_argument("--saved", choices=["last", "first"], default="last",
                        help="the model the built store keeps: as at the end of the history (default), or "
                             "the first fit's (before issue 20: for surprise, a state 6 polls old at start)")
    args = parser.parse_args()
    if args.step:
        directory = Path(args.dir)
        if args.step == "build":
            result = common.build(directory, args.series, 160, args.scope, detector=DETECTORS[args.detector],
                                  save_last=args.saved == "last")
        elif args.step == "steady":
            result = asyncio.run(steady(directory, args.ticks, args.warmup))
        else:
            result = asyncio.run(real(directory, args.real))
        print(json.dumps(result, default=str))
        return
    print(common.machine())
    with tempfile.TemporaryDirectory() as tmp:
        _report(Path(tmp), args)
    print("end of run: " + common.machine())


def _report(tmp: Path, args) -> None:
    n = args.series
    empty, full = tmp / "empty", Path(args.store) if args.store else tmp / "full"
    empty.mkdir()
    full.mkdir(exist_ok=True)
    _child("--step", "build", "--dir", str(empty), "--series", "1", "--detector", args.detector)
    print(f"detector: {DETECTORS[args.detector]}; the stored model: "
          f"{'as at the end of the history' if args.saved == 'last' else 'the first fit'}")
    if (full / "alertd.db").exists():
        print(f"build: reusing the store in {full} ({(full / 'alertd.db').stat().st_size / 2**20:.0f} MiB)")
    else:
        b = _child("--step", "build", "--dir", str(full), "--series", str(n), "--detector", args.detector,
                   "--saved", args.saved)
        print(f"build: {n} series x 160 polls through the daemon in {b['seconds']:.1f} s, {b['fits']} fit; "
              f"store {(full / 'alertd.db').stat().st_size / 2**20:.0f} MiB")
    base = [_child("--step", "steady", "--dir", str(empty), "--ticks", "20")["rss_mib"] for _ in range(args.runs)]
    runs = [_child("--step", "steady", "--dir", str(full), "--ticks", str(args.ticks), "--warmup",
                   str(args.warmup)) for _ in range(args.runs)]
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0] if isinstance(runs[0][k], float)}
    rss0 = statistics.median(base)
    per_series = (med["rss_mib"] - rss0) * 1024 / n
    goals = ({"tick": "goal p99 <= 1.5 s", "cpu": "goal <= 10%", "rss": "goal <= 1 GiB in all"} if n >= 100_000
             else {"tick": "goal p99 <= 200 ms", "cpu": "goal <= 2%", "rss": "goal <= 300 MB and <= 20 KB per series"})
    print(f"steady state, fake clock, {args.ticks} ticks back to back after {args.warmup} (medians of "
          f"{args.runs} fresh processes), last tick's verdicts {runs[-1]['last_tick']}:")
    print(f"  tick: median {med['tick_median_ms']:.1f} ms, p99 {med['tick_p99_ms']:.1f} ms ({goals['tick']})")
    print(f"  CPU: {med['cpu_mean_per_tick_s'] * 1000:.1f} ms per tick = {med['cpu_share'] * 100:.2f}% of one "
          f"core at one tick per 10 s ({goals['cpu']})")
    print(f"  RSS: {med['rss_mib']:.0f} MiB; empty daemon {rss0:.0f} MiB; {per_series:.1f} KiB per series above it "
          f"({goals['rss']})")
    print(f"  start-up to ready with the stored rule-scope model: {med['ready_s']:.2f} s after import, "
          f"{med['ready_since_process_s']:.2f} s from process start (goal <= 5 s); model restored: "
          f"{all(r['model_restored'] for r in runs)}; the first tick after it (seeds every series' "
          f"window from the store) {med['first_tick_ms']:.0f} ms")
    print(f"  reload: unchanged file {med['reload_unchanged_ms']:.0f} ms, one rule added "
          f"{med['reload_rule_added_ms']:.0f} ms (goal <= 1 s)")
    print(f"  reference: bare PyOD {runs[0].get('pyod_model', 'KNN')} decision_function on "
          f"{n} rows (the pyod detector: its model on the same windows; surprise: see _reference_rows) {med['pyod_ms']:.1f} ms = {med['pyod_per_s']:,.0f}/s; the detector's score() "
          f"{med['detector_score_ms']:.1f} ms; alertd end to end {med['end_to_end_per_s']:,.0f}/s; "
          f"ratio to the reference, tick by tick (the reference run right after each tick): "
          f"{med['ratio_wall']:.2f} in wall time, {med['ratio_cpu']:.2f} in CPU time (goal >= 0.5)")
    if args.real:
        r = _child("--step", "real", "--dir", str(full), "--real", str(args.real))
        print(f"real time: {r['polls']:.0f} scheduled polls in {r['wall_s']:.0f} s: CPU {r['cpu_s']:.2f} s = "
              f"{r['cpu_share'] * 100:.2f}% of one core; mean tick lag {r['tick_lag_mean_ms']:.1f} ms; "
              f"RSS {r['rss_mib']:.0f} MiB")
    if args.series_models:
        m = args.series_models
        sm = tmp / "series"
        sm.mkdir()
        b = _child("--step", "build", "--dir", str(sm), "--series", str(m), "--scope", "series", "--detector", "pyod")
        rs = [_child("--step", "steady", "--dir", str(sm), "--ticks", "5", "--warmup", "1") for _ in range(args.runs)]
        print(f"model_scope: series, {m} series ({m} models; fit {b['model'].get('fit_seconds', 0):.1f} s, store "
              f"{(sm / 'alertd.db').stat().st_size / 2**20:.0f} MiB): ready in "
              f"{statistics.median(r['ready_s'] for r in rs):.2f} s after import; tick median "
              f"{statistics.median(r['tick_median_ms'] for r in rs):.0f} ms; RSS "
              f"{statistics.median(r['rss_mib'] for r in rs):.0f} MiB")


if __name__ == "__main__":
    main()
