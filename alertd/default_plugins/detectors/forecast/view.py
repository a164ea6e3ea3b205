"""What a forecast rule expects a series to do next, as plain data (`Detector.forecast`): for
the status page, the API and backtest plots."""

from __future__ import annotations

import math

import numpy as np

from alertd.detect.forecast import two_sided_z
from alertd.detect.trend import LineFit
from alertd.durations import format_duration

VIEW_HORIZON = 6 * 3600.0  # how far ahead pages draw a forecast without will_cross


def forecast_view(det, key: str) -> dict | None:
    """The forecast of series `key` from its latest point: times, central path, interval
    (`level`, or with a confidence the warning's), the line and the expected crossing."""
    i = det.memory.index.get(key)
    if i is None or not math.isfinite(det.memory["ts"][i]):
        return None
    p, line = det.params, det.line
    now, x = float(det.memory["ts"][i]), float(det.memory["value"][i])
    ahead = float(line.within) if line else VIEW_HORIZON
    view = {"key": key, "ts": [], "mean": [], "lower": [], "upper": [], "model": p.model, "from": now,
            "value": x, "line": None if line is None else line.level, "below": None if line is None else line.below,
            "within": ahead, "confidence": None if line is None else line.confidence, "crossing_at": None}
    crossing_at = float(det.memory["crossing"][i])
    view["crossing_at"] = crossing_at if math.isfinite(crossing_at) else None
    z = two_sided_z(line.confidence if line and line.confidence else p.level)
    if p.model == "trend":
        mem = det.memory
        fit = LineFit(*(np.array([float(mem[k][i])]) for k in ("slope", "intercept", "count", "mean_t", "sxx",
                                                                  "resid")))
        if not np.isfinite(fit.slope[0]):
            return None
        grid = np.linspace(0.0, ahead, 25)
        mean = fit.value_at(grid)
        spread = np.nan_to_num(fit.spread_at(grid))  # OLS prediction interval
        view.update(ts=(now + grid).tolist(), mean=mean.tolist(), lower=(mean - z * spread).tolist(),
                    upper=(mean + z * spread).tolist(), model=f"linear trend over {format_duration(p.range)}")
        return view
    m = det.model
    row = m.index.get(key, -1) if m is not None else -1
    if row < 0:
        return None
    rows = np.array([row])
    u, _ = m.position(np.array([now]))
    lead = np.concatenate([[0.0], np.arange(1.0 - (u[0] % 1.0), ahead / m.knot + 1.0)])
    lead = lead[lead * m.knot <= ahead + 1e-6]
    pos = np.minimum(u[0] + lead, m.path.shape[1] - 1)[None, :]
    if m.flow == "none":
        mean = m.at(rows, pos)[0] + float(det.memory["offset"][i])
    else:
        moved = m.at(rows, pos)[0] - m.at(rows, u)[0]
        mean = x - moved if m.flow == "drops" else x + moved
    spread = m.spread(rows, u, lead[None, :])[0]
    if m.flow != "none":
        spread[0] = 0.0
    view.update(ts=(now + lead * m.knot).tolist(), mean=mean.tolist(), lower=(mean - z * spread).tolist(),
                upper=(mean + z * spread).tolist(), model=m.name_of(row))
    return view

