"""Running whole series through the seasonal-surprise score (backtests, cross-validation).

`run_series` / `run_many` run whole series: several in lockstep, row i of every series in
one update, identical to running each alone, and to the daemon (a point whose timestamp is
not after the series' last one is skipped, as the engine skips it). `events` is the alarm
rule that goes with the score: an event starts where the score reaches the threshold after
`quiet` rows below it.
"""

from __future__ import annotations

import numpy as np

from .surprise import Core, SurpriseState


def run_many(series, core=None, *, threshold: float = 0.2, full: bool = False):
    """Run several (timestamps, values) series in lockstep through one state. Returns a list
    of score arrays, or with `full` of dicts of arrays (score, low, high, side, expected)."""
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
