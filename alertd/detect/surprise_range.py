"""The expected range of the seasonal-surprise score, and running whole series through it.

`expected_range` inverts the score: the values which, sustained, keep the short mean of z
and hence the score below the threshold, on the sides the rule watches, inside the metric's
domain (given bounds, else learned: never below 0 for a series that never was, never above
1 for a ratio that always stayed within [0, 1]). A point outside it is what fires; a point
back inside it is what clears.

`run_series` / `run_many` run whole series (backtests, cross-validation): several series in
lockstep, row i of every series in one update, identical to running each alone, and to
the daemon (a point whose timestamp is not after the series' last one is skipped, as the
engine skips it).
`events` is the alarm rule that goes with the score: an event starts where the score
reaches the threshold after `quiet` rows below it.
"""

from __future__ import annotations

import math

import numpy as np


def expected_range(p, c, preds, sus, sds, active, gain, lpu, beta, live, threshold, bounds):
    """(low, high) per series; see the module docstring. `c`: the state's columns."""
    Cstar = threshold * p.decades * math.log(10.0)
    b, u = p.tail_blend, p.tail_u
    below = np.minimum(lpu / u, 1.0)
    S_low = Cstar / (b * below + (1.0 - b))  # surprise at the threshold, if it is <= u
    S_high = (Cstar - b * (lpu - u / beta)) / (b / beta + (1.0 - b))
    Sstar = np.where(S_low <= u, S_low, np.maximum(S_high, u))
    mstar = Sstar / np.maximum(gain, 1e-300)
    z = np.minimum(mstar, p.zclip)
    # an alarm needs every voting predictor to see the deviation: the widest of their bands
    high = np.max([np.where(act, pr + z * su, -np.inf) for pr, su, act in zip(preds, sus, active)], axis=0)
    low = np.min([np.where(act, pr - z * sd, np.inf) for pr, sd, act in zip(preds, sds, active)], axis=0)
    high = np.where(mstar >= p.zclip, np.inf, high)
    low = np.where(mstar >= p.zclip, -np.inf, low)
    if p.direction == "down":
        high = np.full_like(high, np.inf)
    if p.direction == "up":
        low = np.full_like(low, -np.inf)
    lo_given, hi_given = bounds
    lo_b = np.full_like(low, lo_given) if math.isfinite(lo_given) else np.where(c["xmin"] >= 0, 0.0, -np.inf)
    hi_b = (np.full_like(high, hi_given) if math.isfinite(hi_given)
            else np.where((c["xmin"] >= 0) & (c["xmax"] <= 1.0), 1.0, np.inf))
    low = np.clip(low, lo_b, np.maximum(hi_b, lo_b))
    high = np.clip(high, lo_b, np.maximum(hi_b, lo_b))
    return np.where(live, low, np.nan), np.where(live, high, np.nan)


def run_many(series, core=None, *, threshold: float = 0.2, full: bool = False):
    """Run several (timestamps, values) series in lockstep through one state. Returns a list
    of score arrays, or with `full` of dicts of arrays (score, low, high, side, expected)."""
    from .surprise import Core, SurpriseState

    S = len(series)
    L = max((len(v) for _, v in series), default=0)
    state = SurpriseState(S, core or Core())
    V = np.full((L, S), np.nan)
    T = np.full((L, S), np.nan)
    for j, (ts, v) in enumerate(series):
        ts = np.asarray(ts, dtype=float)
        # the daemon skips a point whose timestamp is not after the series' last one
        fresh = ts > np.concatenate([[-np.inf], np.fmax.accumulate(ts)[:-1]])
        V[: len(v), j] = np.where(fresh, v, np.nan)
        T[: len(ts), j] = ts
    names = ("score", "low", "high", "side", "expected") if full else ("score",)
    out = {k: np.zeros((L, S)) for k in names}
    for i in range(L):
        r = state.update(V[i], T[i], threshold=threshold)
        for k in names:
            out[k][i] = getattr(r, k)
    if not full:
        return [out["score"][: len(v), j].copy() for j, (_, v) in enumerate(series)]
    return [{k: out[k][: len(v), j].copy() for k in names} for j, (_, v) in enumerate(series)]


def run_series(ts, values, core=None, *, threshold: float = 0.2, full: bool = False):
    """One whole series, one row at a time."""
    return run_many([(np.asarray(ts, float), np.asarray(values, float))], core, threshold=threshold, full=full)[0]


def quiet_rows(ts, cooldown_rows: int, cooldown_sec: float) -> int:
    """The cooldown in rows of this series' typical interval: the larger of the two."""
    d = np.diff(np.asarray(ts, dtype=float))
    d = d[d > 0]
    dt = float(np.median(d)) if len(d) else 1.0
    return max(int(cooldown_rows), int(round(cooldown_sec / dt)))


def events(score, threshold: float, quiet: int) -> np.ndarray:
    """Rows where an event starts: score >= threshold after at least `quiet` rows below it."""
    s = np.nan_to_num(np.asarray(score, dtype=float))
    above = np.flatnonzero(s >= threshold)
    out = np.zeros(len(s), dtype=bool)
    if len(above):
        gaps = np.diff(above, prepend=-(10 ** 12))
        out[above[gaps > quiet]] = True
    return out
