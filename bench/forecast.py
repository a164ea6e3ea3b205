"""Benchmark (issue 18): what forecasting costs the daemon at 10,000 series.

    nice -n 10 .venv/bin/python bench/forecast.py                       # 10,000 series
    nice -n 10 .venv/bin/python bench/forecast.py --series 1000 --polls 20 --library-series 0   # quick

Two sources of n series each (`bench_series` with a daily rhythm, every 10 s, hosts apart),
polled alternately on a fake clock by the real daemon (store, engine, trainer, scheduler
paused so the bench drives the polls):

- `base`: one `threshold` rule (the poll's fixed cost: collect, store, score, alert);
- `fc`: the same `threshold` rule plus a `forecast` rule (the default model, `profile`, with
  `will_cross: {above: ..., within: 1h}`: the crossing search, the heavier of its two modes),
  with `--days` of history at 5-minute spacing in the store (`retrain: 1h`, the default).

1. **The fit beside the ticks**: the first poll of `fc` starts the forecast rule's fit (every
   series: the fit worker process reads the history from SQLite and fits, the trainer's thread
   serialises, the loop installs and saves; before, all of it but the install in the thread).
   Meanwhile the bench keeps polling both sources every `--gap` seconds of wall time and a
   task on the event loop sleeps 10 ms in a loop; reported: the fit's time, the ticks during
   it (median, p99, max) and how late the loop woke (p50, p99, max).
2. **Scoring**: then `--polls` polls of each source alternately, the model in place; the
   forecast rule's cost = median(fc) - median(base), and its share of CPU per poll.
3. **Library models** (`--library AutoETS` etc., `--library-series` of the same series, in
   alertd's statsforecast worker process): the worker's CPU seconds per series, and for
   10,000 series extrapolated linearly (the fits are one series at a time).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scale_common as common  # noqa: E402

from alertd.model import Sample, make_labels  # noqa: E402

DAILY = 0.3  # the rhythm: +-30 % of each series' level
# each source is polled every 10 s, the two half a period apart: at one timestamp the samples
# of `fc` (the lower series ids) would land in the middle of `base`'s rows in the store's
# (ts, series_id) key, a page split per poll that makes `fc`'s insert twice as slow and is no
# cost of the forecast rule (sources polled at the very same instant are not what a daemon sees)
HALF = 5.0


def config(directory: Path, n: int) -> Path:
    rules = ""
    for name in ("base", "fc"):
        rules += f"""\
  - name: {name}_high
    source: {name}
    series: latency_ms
    detector: {{type: threshold, above: 100000}}
"""
    rules += """\
  - name: fc_forecast
    source: fc
    series: latency_ms
    detector: {type: forecast, will_cross: {above: 100000, within: 1h}}
"""
    text = f"""\
store: alertd.db
http: {{enabled: false}}
retention: 30d
sources:
  base: {{type: bench_series, every: 10s, series: {n}, first: 0, daily: {DAILY}, backfill: false}}
  fc: {{type: bench_series, every: 10s, series: {n}, first: {n}, daily: {DAILY}, backfill: false}}
rules:
{rules}receivers:
  null: [{{type: console, stream: stderr, if_env: BENCH_NEVER_SET}}]
"""
    path = directory / "alertd.yaml"
    path.write_text(text)
    return path


def history(directory: Path, n: int, days: float, now: float) -> int:
    """`days` of 5-minute points of the `fc` source's series, as its collect would make them."""
    from alertd.store import Store

    store = Store(str(directory / "alertd.db"))
    level = np.random.default_rng(1).uniform(50, 150, n)  # SeriesSource's levels (seed 1)
    labels = [make_labels({"host": f"h{i:05d}", "dc": f"dc{i % 4}"}) for i in range(n, 2 * n)]
    rng = np.random.default_rng(5)
    steps = int(days * 86400 / 300)
    for k0 in range(0, steps, 12):
        with store.atomic():  # an hour of points a transaction
            for k in range(k0, min(k0 + 12, steps)):
                ts = now - (steps - k) * 300.0
                values = level * (1 + DAILY * np.sin(2 * np.pi * ts / 86400.0)) + rng.normal(0, 1, n) * np.sqrt(level)
                store.samples.append([Sample("latency_ms", lab, ts, v) for lab, v in zip(labels, values.tolist())],
                                     "fc")
    # a daemon that ran these 3 days has sealed its complete 30-minute windows into chunks
    # (the store:seal job): read them the way a real first fit reads them
    with store.atomic():
        store.samples.seal_all()
    store.close()
    return steps * n


async def run(directory: Path, polls: int, gap: float) -> dict:
    from alertd.clock import FakeClock
    from alertd.config.load import load_config
    from alertd.daemon.core import Daemon

    common.quiet_logs()
    reg = common.registry()
    cfg = load_config(directory / "alertd.yaml", reg, environ={})
    clock = FakeClock(float(json.loads((directory / "now.json").read_text())))
    daemon = Daemon(cfg, reg, store_path=directory / "alertd.db", clock=clock)
    await daemon.start()
    daemon.scheduler.pause()
    trainer = daemon.trainer
    # what the loop itself spends on the fit (installing and saving the model) and on scoring
    finish_ms: list[float] = []
    score_ms: list[float] = []
    real_finish = trainer._finish

    def finish(st, future, seen):
        t0 = time.perf_counter()
        real_finish(st, future, seen)
        finish_ms.append(1000 * (time.perf_counter() - t0))
    trainer._finish = finish
    detector = next(rt for rt in daemon.engine.runtimes() if rt.rule.name == "fc_forecast").detector
    real_score = detector.score

    def score(batch):
        t0 = time.perf_counter()
        out = real_score(batch)
        score_ms.append(1000 * (time.perf_counter() - t0))
        return out
    detector.score = score

    lateness: list[float] = []
    stop = asyncio.Event()

    ticking = {"n": 0}

    async def watch():  # how late the loop wakes from a 10 ms sleep (sleeps that overlap a tick not counted)
        while not stop.is_set():
            t0, before = time.perf_counter(), ticking["n"]
            await asyncio.sleep(0.01)
            if ticking["n"] == before:
                lateness.append(time.perf_counter() - t0 - 0.01)

    async def tick(name: str) -> tuple[float, float]:
        ticking["n"] += 1
        c0, w0 = time.process_time(), time.perf_counter()
        await daemon.poll(name)
        ticking["n"] += 1
        return time.perf_counter() - w0, time.process_time() - c0

    # 1. the fit, beside the ticks, while polls go on
    watcher = asyncio.create_task(watch())
    fit_started = time.perf_counter()
    during: list[float] = []  # polls of fc (its forecast rule still without a model)
    during_base: list[float] = []  # polls of base: the same work as after the fit
    clock.advance(HALF)
    first_base = (await tick("base"))[0]
    mark = len(lateness)
    clock.advance(HALF)
    first_fc = (await tick("fc"))[0]  # this poll seeds the windows from the store and starts the fit
    first_fc_late = lateness[mark:] or [0.0]  # how late the loop woke while that poll ran
    while trainer.status()["fc_forecast"]["fits"] == 0 and time.perf_counter() - fit_started < 1800:
        await asyncio.sleep(gap)
        clock.advance(HALF)
        during_base.append((await tick("base"))[0])
        clock.advance(HALF)
        during.append((await tick("fc"))[0])
    fit_wall = time.perf_counter() - fit_started
    stop.set()
    await watcher
    idle_lateness = list(lateness)
    lateness.clear()
    info = trainer.status()["fc_forecast"]
    # the loop idle, for comparison
    stop.clear()
    watcher = asyncio.create_task(watch())
    await asyncio.sleep(3.0)
    stop.set()
    await watcher
    quiet = list(lateness)

    # 2. scoring: alternate the two sources
    base, fc, base_cpu, fc_cpu = [], [], [], []
    score_ms.clear()
    runtime = next(rt for rt in daemon.engine.runtimes() if rt.rule.name == "fc_forecast")
    for i in range(polls + 3):
        clock.advance(HALF)
        bw, bc = await tick("base")
        clock.advance(HALF)
        fw, fcpu = await tick("fc")
        if i >= 3:
            base.append(bw)
            base_cpu.append(bc)
            fc.append(fw)
            fc_cpu.append(fcpu)
    state = runtime.state()
    await daemon.drain()
    await daemon.close()
    ms = lambda xs, q=None: 1000 * (statistics.median(xs) if q is None else common.pct(xs, q))  # noqa: E731
    return {
        "fit": {"seconds_to_installed": fit_wall, "trainer_seconds": info["model"].get("fit_seconds"),
                "model": info["model"], "ticks_during_fit": len(during),
                "first_poll_ms": {"base": 1000 * first_base, "fc": 1000 * first_fc,
                                  "fc_loop_late_max": 1000 * max(first_fc_late)},
                "fitted_in": "daemon" if info.get("fit_pid", os.getpid()) == os.getpid() else "worker process",
                "install_and_save_on_loop_ms": max(finish_ms) if finish_ms else None,
                "tick_during_fit_ms": {"median": ms(during), "p99": ms(during, 99), "max": 1000 * max(during)},
                "base_tick_during_fit_ms": {"median": ms(during_base), "p99": ms(during_base, 99),
                                            "max": 1000 * max(during_base)},
                "loop_late_during_fit_ms": {"p50": ms(idle_lateness, 50), "p99": ms(idle_lateness, 99),
                                            "max": 1000 * max(idle_lateness)},
                "loop_late_idle_ms": {"p50": ms(quiet, 50), "p99": ms(quiet, 99), "max": 1000 * max(quiet)}},
        "score": {"polls": polls, "base_median_ms": ms(base), "base_p99_ms": ms(base, 99),
                  "fc_median_ms": ms(fc), "fc_p99_ms": ms(fc, 99),
                  "forecast_adds_ms": ms(fc) - ms(base),
                  "forecast_adds_ms_paired_median": 1000 * statistics.median(np.subtract(fc, base)),
                  "forecast_adds_cpu_ms": 1000 * (statistics.median(fc_cpu) - statistics.median(base_cpu)),
                  "detector_score_ms_median": statistics.median(score_ms[3:]),
                  "detector_score_ms_p99": common.pct(score_ms[3:], 99),
                  "last_tick": state.get("last_tick")},
    }


def library(models: list[str], n: int, days: float) -> dict:
    from alertd.detect.forecast_library import fit_library, shutdown

    level = np.random.default_rng(1).uniform(50, 150, n)
    rng = np.random.default_rng(5)
    now = 1_750_000_000.0
    ts = now - np.arange(int(days * 86400 / 300))[::-1] * 300.0
    values = [lv * (1 + DAILY * np.sin(2 * np.pi * ts / 86400.0)) + rng.normal(0, 1, len(ts)) * np.sqrt(lv)
              for lv in level]
    out = {}
    fit_library(models[0], ["warm"], [ts], [values[0]], end=now, span=days * 86400, horizon=3 * 3600.0)
    for model in models:
        started = time.perf_counter()
        fitted = fit_library(model, [f"s{i}" for i in range(n)], [ts] * n, values, end=now, span=days * 86400,
                             horizon=3 * 3600.0)
        wall = time.perf_counter() - started
        out[model] = {"series": n, "wall_s": wall, "worker_cpu_s": fitted.cpu_seconds,
                      "cpu_per_series_s": fitted.cpu_seconds / n,
                      "cpu_10000_series_h": fitted.cpu_seconds / n * 10_000 / 3600,
                      "seasonal": int((fitted.period > 0).sum())}
        print(f"  {model}: {n} series in {wall:.1f} s wall, {fitted.cpu_seconds:.1f} s worker CPU "
              f"({1000 * fitted.cpu_seconds / n:.0f} ms a series; 10,000 series: "
              f"{fitted.cpu_seconds / n * 10_000 / 3600:.2f} h of CPU)", flush=True)
    shutdown()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--series", type=int, default=10_000)
    ap.add_argument("--days", type=float, default=3.0, help="history of the forecast rule's series")
    ap.add_argument("--polls", type=int, default=30)
    ap.add_argument("--gap", type=float, default=0.5, help="wall seconds between polls while the fit runs")
    ap.add_argument("--library", default="AutoETS,MSTL", help="statsforecast models to time ('' for none)")
    ap.add_argument("--library-series", type=int, default=40)
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--history-cache", help="keep the built history (store) in this directory and reuse it "
                    "in later runs: alternate runs of two versions then read the same store")
    args = ap.parse_args()
    print(common.machine(), flush=True)
    result: dict = {"machine": common.machine(), "args": vars(args)}
    with tempfile.TemporaryDirectory(prefix="alertd-bench-forecast-") as tmp:
        directory = Path(tmp)
        config(directory, args.series)
        cache = Path(args.history_cache) if args.history_cache else None
        if cache is not None and (cache / "now.json").exists():  # the same history as an earlier run
            for name in ("alertd.db", "now.json"):
                shutil.copy(cache / name, directory / name)
            print(f"history: copied from {cache}", flush=True)
        else:
            now = time.time()
            (directory / "now.json").write_text(json.dumps(now))
            t0 = time.perf_counter()
            samples = history(directory, args.series, args.days, now)
            print(f"history: {samples:,} samples in {time.perf_counter() - t0:.0f} s", flush=True)
            if cache is not None:
                cache.mkdir(parents=True, exist_ok=True)
                for name in ("alertd.db", "now.json"):
                    shutil.copy(directory / name, cache / name)
        result.update(asyncio.run(run(directory, args.polls, args.gap)))
    fit, score = result["fit"], result["score"]
    print(f"fit of {fit['model'].get('series')} series ({fit['model'].get('seasonal_series')} seasonal, "
          f"{fit['model'].get('train_rows'):,} points): {fit['seconds_to_installed']:.1f} s until installed "
          f"(the fit itself {fit['model'].get('fit_seconds')} s, in the {fit['fitted_in']})")
    print(f"  first polls (they seed the windows from the store; fc's starts the fit): base "
          f"{fit['first_poll_ms']['base']:.0f} ms, fc {fit['first_poll_ms']['fc']:.0f} ms (the loop woke late "
          f"meanwhile by at most {fit['first_poll_ms']['fc_loop_late_max']:.0f} ms)")
    print(f"  polls during the fit ({fit['ticks_during_fit']} each): base median "
          f"{fit['base_tick_during_fit_ms']['median']:.1f} ms, p99 {fit['base_tick_during_fit_ms']['p99']:.1f}, max "
          f"{fit['base_tick_during_fit_ms']['max']:.1f}; fc median {fit['tick_during_fit_ms']['median']:.1f} ms, "
          f"p99 {fit['tick_during_fit_ms']['p99']:.1f}, max {fit['tick_during_fit_ms']['max']:.1f}")
    print(f"  loop wake-up lateness during the fit: p50 {fit['loop_late_during_fit_ms']['p50']:.1f} ms, "
          f"p99 {fit['loop_late_during_fit_ms']['p99']:.1f}, max {fit['loop_late_during_fit_ms']['max']:.1f} "
          f"(idle loop: p99 {fit['loop_late_idle_ms']['p99']:.1f}, max {fit['loop_late_idle_ms']['max']:.1f})")
    print(f"scoring, {score['polls']} polls each: base median {score['base_median_ms']:.1f} ms "
          f"(p99 {score['base_p99_ms']:.1f}); with the forecast rule {score['fc_median_ms']:.1f} ms "
          f"(p99 {score['fc_p99_ms']:.1f}); the forecast rule adds {score['forecast_adds_ms']:.1f} ms "
          f"(paired median {score['forecast_adds_ms_paired_median']:.1f} ms; CPU {score['forecast_adds_cpu_ms']:.1f} ms)")
    print(f"  of which the forecast detector's score(): median {score['detector_score_ms_median']:.1f} ms, p99 "
          f"{score['detector_score_ms_p99']:.1f} ms; installing and saving the fitted model on the loop: "
          f"{fit['install_and_save_on_loop_ms']:.1f} ms")
    models = [m for m in args.library.split(",") if m]
    if models and args.library_series:
        print(f"library models, {args.library_series} series of {args.days:g} days at 5 minutes, worker process:")
        result["library"] = library(models, args.library_series, args.days)
    print(common.machine())
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
