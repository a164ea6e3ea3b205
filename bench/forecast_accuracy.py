"""Benchmark: forecast accuracy of the `forecast` detector, rolling origin, against seasonal naive.

    .venv/bin/python bench/forecast_accuracy.py                     # every series of nab-dev and the simulator
    .venv/bin/python bench/forecast_accuracy.py --param train_span=14d --origins 6
    .venv/bin/python bench/forecast_accuracy.py --only sim/ --json out.json

Series: every file of nab-dev (read where it lies, ../shared/data/nab-dev or $ALERTD_NAB_DATA;
nothing is copied) and the shop simulator's 14 series (`scenario: week`, seed 42, 5-minute
step, the 3 weeks before the labelled week and the week itself: 28 days). Each series is put on
a regular grid of its median step (the mean per bin; gaps interpolated, and errors counted
only on observed points).

At `--origins` origins per series, evenly spaced from the middle of the series (at least
`train_span` in) to 6 h before its end, the detector's own `fit` (the code the daemon's trainer
runs, with the detector's defaults unless `--param` changes them) is handed the raw points of
the training span before the origin, and its central path is compared with what came: mean
absolute error over the leads up to 1 h and up to 6 h (hourly series: 1 and 6 steps). The
baseline is the seasonal-naive forecast (the last season repeated, with the period the model
found at that origin; the last value when it found none).

Reported per series and as medians: relMAE = the model's error summed over origins / seasonal
naive's (below 1: better than seasonal naive), and each forecast's MASE (its error over the
in-sample one-step seasonal-naive error of the training window, Hyndman and Koehler), at 1 h
and 6 h. A series is *seasonal* when the model found a daily or weekly rhythm at half of its
origins or more; the issue's bar is relMAE < 1 at 1 h on at least 80 % of them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alertd.backtest.nab import read_series_csv  # noqa: E402
from alertd.base import PluginContext, TrainingSet  # noqa: E402
from alertd.config.schema import parse_params  # noqa: E402
from alertd.default_plugins.detectors.forecast import Forecast  # noqa: E402
from alertd.model import make_labels  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from nab import default_data  # noqa: E402


def regularise(ts: np.ndarray, x: np.ndarray, step: float):
    """(grid times, values, observed): the mean per bin of `step`; empty bins interpolated."""
    g0 = math.floor(ts[0] / step) * step
    idx = np.floor((ts - g0) / step).astype(np.int64)
    n = int(idx[-1]) + 1
    total = np.bincount(idx, weights=np.nan_to_num(x), minlength=n)
    count = np.bincount(idx, weights=np.isfinite(x).astype(float), minlength=n)
    obs = count > 0
    y = np.full(n, np.nan)
    y[obs] = total[obs] / count[obs]
    known = np.flatnonzero(obs)
    y[~obs] = np.interp(np.flatnonzero(~obs), known, y[known])
    return g0 + step * np.arange(n), y, obs


def nab_series(root: str) -> list[tuple[str, np.ndarray, np.ndarray]]:
    out = []
    for path in sorted(Path(root, "data").glob("*/*.csv")):
        ts, values, _ = read_series_csv(path)
        out.append((f"{path.parent.name}/{path.name}", ts, values))
    return out


def sim_series(days: int = 28, step: float = 300.0) -> list[tuple[str, np.ndarray, np.ndarray]]:
    from alertd.default_plugins.sources.shop_sim import ShopSim

    params = parse_params(ShopSim.Params, {"scenario": "week", "start": "2025-06-02T00:00:00Z",
                                           "step": f"{int(step)}s", "seed": 42})
    sim = ShopSim(params, PluginContext("shop", lambda: 0.0))
    lo, hi = sim.labelled_window()
    slots = np.arange(int((hi - days * 86400) // step), int(hi // step))
    cols = sim.values(slots)
    return [(f"sim/{key}", slots * step, np.asarray(col, dtype=float)) for (_, _, key, _), col in zip(sim.series, cols)]


def mean_abs(err: np.ndarray) -> float:
    return float(np.mean(np.abs(err))) if len(err) else float("nan")


def evaluate(name, ts, values, detector: Forecast, origins: int) -> dict | None:
    ts, values = np.asarray(ts, float), np.asarray(values, float)
    ok = np.isfinite(ts)
    ts, values = ts[ok], values[ok]
    step = float(np.median(np.diff(ts)))
    step = float(round(step / 60.0) * 60.0) or 60.0
    grid, y, obs = regularise(ts, values, step)
    N = len(y)
    h1, h6 = max(1, int(3600 // step)), max(1, int(6 * 3600 // step))
    span = float(detector.params.train_span)
    lo = max(N // 2, int(span // step))
    if lo >= N - h6:
        return None
    rows = []
    for o in np.linspace(lo, N - h6, origins).astype(int):
        t_o = grid[o]
        inside = (ts >= t_o - span) & (ts < t_o)
        data = TrainingSet([name], [make_labels({})], [ts[inside]], [values[inside]], t_o)
        started = time.perf_counter()
        model = detector.fit(data)
        fit_s = time.perf_counter() - started
        if model is None:
            continue
        test_t, test_y, test_obs = grid[o:o + h6], y[o:o + h6], obs[o:o + h6]
        u = (test_t - model.origin) / model.knot
        path = model.at(np.array([0]), u[None, :])[0]
        period = float(model.period[0])
        m = int(round(period / step)) if period else 0
        train = y[max(0, o - int(span // step)):o]
        lag = m if m > 1 and len(train) > m else 1
        last = y[o - lag:o] if lag > 1 else y[o - 1:o]
        snaive = np.resize(last, h6)
        scale = mean_abs(train[lag:] - train[:-lag]) if len(train) > lag else float("nan")
        err_m, err_s = np.abs(test_y - path), np.abs(test_y - snaive)
        rows.append({"origin": int(o), "period": period, "fit_s": fit_s, "scale": scale,
                     "model_1h": mean_abs(err_m[:h1][test_obs[:h1]]), "snaive_1h": mean_abs(err_s[:h1][test_obs[:h1]]),
                     "model_6h": mean_abs(err_m[test_obs]), "snaive_6h": mean_abs(err_s[test_obs])})
    if not rows:
        return None

    tiny = 1e-6 * (float(np.nanmean(np.abs(y))) + 1e-12)  # float32 paths: below this is exact

    def rel(h):
        a = sum(r[f"model_{h}"] for r in rows if math.isfinite(r[f"model_{h}"]))
        b = sum(r[f"snaive_{h}"] for r in rows if math.isfinite(r[f"snaive_{h}"]))
        if b <= tiny * len(rows):  # seasonal naive is exact: a tie if the model is too
            return 1.0 if a <= tiny * len(rows) else float("inf")
        return a / b

    def mase(kind, h):
        vals = [r[f"{kind}_{h}"] / r["scale"] for r in rows if r["scale"] and math.isfinite(r[f"{kind}_{h}"])]
        return statistics.mean(vals) if vals else float("nan")

    seasons = [r["period"] for r in rows]
    found = [p for p in seasons if p > 0]
    return {"series": name, "step": step, "origins": len(rows),
            "seasonal": len(found) >= len(rows) / 2,
            "season": ("weekly" if statistics.mode(found) >= 7 * 86400 else "daily") if found else "-",
            "rel_1h": rel("1h"), "rel_6h": rel("6h"),
            "mase_1h": mase("model", "1h"), "mase_6h": mase("model", "6h"),
            "snaive_mase_1h": mase("snaive", "1h"), "snaive_mase_6h": mase("snaive", "6h"),
            "fit_s_median": statistics.median(r["fit_s"] for r in rows)}


def summary(results: list[dict]) -> dict:
    seasonal = [r for r in results if r["seasonal"]]
    exact = [r for r in seasonal if r["rel_1h"] == 1.0]

    def med(rs, k):
        vals = [r[k] for r in rs if math.isfinite(r[k])]
        return statistics.median(vals) if vals else float("nan")
    beat1 = sum(r["rel_1h"] < 1 for r in seasonal)
    beat6 = sum(r["rel_6h"] < 1 for r in seasonal)
    return {"series": len(results), "seasonal": len(seasonal), "seasonal_beating_snaive_1h": beat1,
            "seasonal_beating_snaive_6h": beat6, "share_1h": beat1 / len(seasonal) if seasonal else None,
            "share_6h": beat6 / len(seasonal) if seasonal else None,
            "seasonal_ties_1h": len(exact),
            "median_rel_1h_all": med(results, "rel_1h"), "median_rel_6h_all": med(results, "rel_6h"),
            "median_rel_1h_seasonal": med(seasonal, "rel_1h"), "median_rel_6h_seasonal": med(seasonal, "rel_6h"),
            "median_mase_1h_all": med(results, "mase_1h"), "median_mase_6h_all": med(results, "mase_6h"),
            "median_snaive_mase_1h_all": med(results, "snaive_mase_1h"),
            "median_snaive_mase_6h_all": med(results, "snaive_mase_6h"),
            "median_fit_s": med(results, "fit_s_median")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=default_data(), help="a NAB-layout folder (default: ../shared/data/nab-dev)")
    parser.add_argument("--origins", type=int, default=6)
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="a forecast detector param (YAML value), e.g. train_span=14d")
    parser.add_argument("--only", default="", help="only series whose name contains this")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    import yaml

    given = {k: yaml.safe_load(v) for k, _, v in (p.partition("=") for p in args.param)}
    params = parse_params(Forecast.Params, given)
    detector = Forecast(params, PluginContext("accuracy", time.time))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, load average "
          f"{os.getloadavg()[0]:.1f}; data: {args.data}; forecast params: {given or 'defaults'}", flush=True)
    series = nab_series(args.data) + sim_series()
    series = [s for s in series if args.only in s[0]]
    started = time.perf_counter()
    results = [r for r in (evaluate(n, t, v, detector, args.origins) for n, t, v in series) if r is not None]
    print(f"{len(results)} series, {time.perf_counter() - started:.0f} s\n")
    print("| series | season | relMAE 1 h | relMAE 6 h | MASE 1 h (seasonal naive) | MASE 6 h (seasonal naive) |")
    print("|---|---|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['series']} | {r['season']}{'' if r['seasonal'] else ' (no)'} | {r['rel_1h']:.3f} | "
              f"{r['rel_6h']:.3f} | {r['mase_1h']:.3f} ({r['snaive_mase_1h']:.3f}) | "
              f"{r['mase_6h']:.3f} ({r['snaive_mase_6h']:.3f}) |")
    s = summary(results)
    print()
    for k, v in s.items():
        print(f"{k}: {v:.3f}" if isinstance(v, float) else f"{k}: {v}")
    if args.json:
        Path(args.json).write_text(json.dumps({"params": given, "summary": s, "series": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
