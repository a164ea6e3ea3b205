"""Seasonal surprise: a streaming, causal anomaly score for many series at once (numpy only).

`SurpriseState` holds the state of S series as arrays (one float64 row of scalars and one
float32 row of profile slots per series; the scalars in column-major order, so that each
field the update reads or writes is one contiguous run of S floats, not every 25th float:
at 100,000 series that made the update 1.4 times faster); `update(values, timestamps, index)` takes the newest
point of some series, scores it *before* learning from it, and returns per series a score in
[0, 1], the expected range of the value, the side of the deviation and the warm-up state.

What it does for every series (docs/detectors.md, "surprise"; the research behind each
choice is in the notes of issue 15):

1. Predictions of the new value, made before looking at it:
   - *level*: an exponentially weighted (EW) level of the recent values (halflife
     `hl_level` points, at least `hl_min_sec` of time);
   - *daily*: the typical value of this time of day (a profile with one slot per sampling
     interval, at most `max_slots`, each slot forgetting with a halflife of `hl_profile`
     days) plus the series' recent offset from it (EW, `hl_offset` points); from the second
     day on;
   - *weekly*: an hour-of-week profile (168 interpolated knots) times a recent factor; from
     the second week on.
   Each keeps an EW spread of its errors, above and below separately (`hl_spread` points).
2. The residual over the spread on its side is z. Spreads never go below half the data's
   quantum (its smallest step), so counts that move by 1 are not infinitely surprising;
   learning clips residuals at `clip` spreads (one outlier neither widens a spread much nor
   moves a level).
3. Surprise: the short EW mean of z (halflife `short_sec` of time, at most `short_max_pts`
   points), normalised for independent z, in the direction(s) watched. Predictors "vote":
   only those with a spread within `agree_ratio` of the best one count, and the least
   surprised of them decides (a deviation must be seen by every good view of the series).
   It is discounted for series with many points per hour (`rate_pow`: alarms per hour, not
   per row, should be rare) and during the first points (`n0`).
   Optionally (`sus_weight` > 0; off by default) a *sustained-shift* view adds evidence up:
   a one-sided CUSUM per side (allowance `sus_k`, at most `sus_zmax` a point) of the
   time-of-day error over a spread scaled by the square root of the prediction for counts,
   which the hour-of-week view, once good, must share; one side adds up only while the other
   is at 0 (the way back from a shift is not a shift the other way); weighted, it competes
   with the short mean (the larger decides), so a steady 2-sigma shift fires in a few points.
4. Calibration per series: an exponential tail fitted to the series' own surprises above
   `tail_u`, blended with the raw surprise (`tail_blend`): a bursty series needs a bigger
   excess than a calm one. score = calibrated / (`decades` * ln 10), clipped to [0, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .surprise_range import expected_range

WEEK_KNOTS = 168  # hour-of-week profile knots


def alpha(hl):
    """EW weight of the newest point for a halflife of `hl` points (array or scalar)."""
    return 1.0 - np.power(0.5, 1.0 / np.maximum(hl, 1e-9))


@dataclass(frozen=True)
class Core:
    """The numeric settings of the score (the plugin's params pick the user-facing ones)."""

    hl_level: float = 4.0
    hl_spread: float = 96.0
    period: float = 86400.0
    max_slots: int = 288
    hl_profile: float = 3.0
    hl_offset: float = 4.0
    hl_min_sec: float = 3600.0
    agree_ratio: float = 2.0
    weekly: bool = True
    hl_week: float = 2.0
    clip: float = 4.0
    quantum: float = 0.5
    short_sec: float = 3600.0
    short_max_pts: float = 12.0
    zclip: float = 100.0
    rate_pow: float = 0.2
    n0: float = 10.0
    min_points: int = 6
    tail_u: float = 3.0
    tail_hl: float = 2000.0
    tail_prior: float = 100.0
    tail_blend: float = 0.5
    decades: float = 10.0
    direction: str = "both"  # "up", "down" or "both"
    agree_now: bool = True  # a view whose short mean lags still agrees if its newest point deviates
    sus_k: float = 1.0      # sustained shift: the one-sided CUSUM's allowance per point (in z)
    sus_zmax: float = 3.0   # ... and the most one point adds to it (single points stay the short mean's)
    sus_weight: float = 0.0  # ... its weight against the short mean (0: the view is off)


FIELDS = ("n", "t0", "tlast", "dt", "ngap", "K", "L", "off", "su_l", "sd_l", "su_s", "sd_s",
          "m", "m_s", "fac_w", "su_w", "sd_w", "m_w", "quant", "xlast", "xmin", "xmax", "k", "pu", "beta",
          "cus_u", "cus_d", "sn")
_F = {name: i for i, name in enumerate(FIELDS)}
FORMAT = 2  # bump when FIELDS or the profile layout change (stored states then warm up again)


@dataclass
class Step:
    """What `update` returns for its series (arrays in the order of the values given)."""

    score: np.ndarray       # in [0, 1]; 0 while warming up or without a point
    low: np.ndarray         # expected range of the value at `threshold` (NaN: unknown)
    high: np.ndarray
    side: np.ndarray        # int8: +1 above expected, -1 below, 0 no deviation
    warming_up: np.ndarray  # bool
    expected: np.ndarray    # the prediction that decided
    basis: np.ndarray       # int8: 0 recent level, 1 time of day, 2 hour of week; -1 none


class SurpriseState:
    """The state of S series and the update that scores and learns (module docstring)."""

    def __init__(self, n_series: int = 0, core: Core = Core()):
        self.p = core
        self.width = core.max_slots + (WEEK_KNOTS if core.weekly else 0)
        self.st = np.zeros((0, len(FIELDS)), order="F")
        self.profile = np.zeros((0, self.width), dtype=np.float32)
        self.grow(n_series)

    def _fresh(self, k: int):
        st = np.zeros((k, len(FIELDS)), order="F")
        st[:, _F["dt"]] = np.nan
        for name, value in (("quant", np.inf), ("xmin", np.inf), ("xmax", -np.inf),
                            ("pu", math.exp(-self.p.tail_u)), ("beta", 1.0), ("fac_w", 1.0)):
            st[:, _F[name]] = value
        return st, np.full((k, self.width), np.nan, dtype=np.float32)

    def grow(self, n_series: int) -> None:
        """Make room for `n_series` series in total (new ones start warming up)."""
        add = n_series - len(self.st)
        if add > 0:
            st, prof = self._fresh(add)
            self.st = np.asfortranarray(np.concatenate([self.st, st]))
            self.profile = np.concatenate([self.profile, prof])

    def reset(self, index) -> None:
        """Forget series `index`: they warm up again."""
        idx = np.atleast_1d(index)
        self.st[idx], self.profile[idx] = self._fresh(len(idx))

    def __len__(self) -> int:
        return len(self.st)

    def column(self, name: str) -> np.ndarray:
        """One per-series scalar (a view): n, tlast, dt, xmin, ..."""
        return self.st[:, _F[name]]

    def bytes_per_series(self) -> int:
        return self.st.shape[1] * self.st.itemsize + self.profile.shape[1] * self.profile.itemsize

    # -- the hot path --------------------------------------------------------------------------
    def update(self, values, timestamps, index=None, threshold: float = 0.2, bounds=(math.nan, math.nan)) -> Step:
        """Score the newest point of the series `index` (default: all, in row order) and learn
        from it. NaN values (or times) leave their series alone. `threshold` and `bounds`
        (the metric's domain; NaN: learned) shape the expected range only."""
        x = np.asarray(values, dtype=float)
        t = np.asarray(timestamps, dtype=float)
        rows = np.arange(len(self)) if index is None else np.asarray(index, dtype=np.int64)
        S = len(rows)
        if x.shape != (S,) or t.shape != (S,):
            raise ValueError(f"update wants {S} values and {S} timestamps")
        ok = np.isfinite(x) & np.isfinite(t)
        out = Step(np.zeros(S), np.full(S, np.nan), np.full(S, np.nan), np.zeros(S, dtype=np.int8),
                   self.st[rows, _F["n"]] < self.p.min_points, np.full(S, np.nan), np.full(S, -1, dtype=np.int8))
        if ok.all() and (index is None or (S == len(self) and np.array_equal(rows, np.arange(S)))):
            idx, sel = slice(None), slice(None)  # every series in row order: views, no copies
        else:
            sel = np.flatnonzero(ok)
            idx = rows[sel]
            if len(idx) == 0:
                return out
        st, prof = self.st[idx], self.profile[idx]
        if not isinstance(idx, slice):  # (a gather comes back row-major: columns, as the state keeps them)
            st = np.asfortranarray(st)
        res = self._step(st, prof, x[sel], t[sel], threshold, bounds)
        if not isinstance(idx, slice):  # (views were written in place)
            self.st[idx], self.profile[idx] = st, prof
        for name, value in zip(("score", "low", "high", "side", "warming_up", "expected", "basis"), res):
            getattr(out, name)[sel] = value
        return out

    def _step(self, st, allprof, x, t, threshold, bounds):
        p = self.p
        prof = allprof[:, : p.max_slots]
        c = {name: st[:, i] for name, i in _F.items()}  # column views: writes go to st
        n = c["n"]
        first = n == 0
        rows = np.arange(len(x))

        # sampling interval: geometric mean of the first gaps, then a slow, clipped EW
        gap = t - c["tlast"]
        ok_gap = ~first & (gap > 0)
        lg = np.log(np.where(ok_gap, gap, 1.0))
        ng = c["ngap"]
        ldt = np.where(ng > 0, np.log(np.where(ng > 0, c["dt"], 1.0)), lg)
        lim = np.where(ng < 8, np.inf, math.log(4.0))
        ldt = ldt + np.maximum(1.0 / (ng + 1.0), 0.01) * np.clip(lg - ldt, -lim, lim)
        c["dt"][:] = np.where(ok_gap, np.exp(ldt), c["dt"])
        ng += ok_gap
        c["t0"][:] = np.where(first, t, c["t0"])
        c["tlast"][:] = t
        dt = np.where(ng > 0, c["dt"], 3600.0)

        # daily profile slot (slots per day fixed once 8 points have been seen)
        K = np.where((c["K"] == 0) & (n >= 8), np.clip(np.round(p.period / dt), 1, p.max_slots), c["K"])
        c["K"][:] = K
        slot = np.minimum((np.mod(t, p.period) / p.period * np.maximum(K, 1)).astype(np.int64), p.max_slots - 1)
        prof_v = prof[rows, slot].astype(float)
        seasonal = (K >= 2) & np.isfinite(prof_v) & ((t - c["t0"]) >= p.period)
        prof_v = np.where(np.isfinite(prof_v), prof_v, 0.0)

        # predictions and their spreads
        c["L"][:] = np.where(first, x, c["L"])
        pred_l = c["L"]
        pred_s = np.where(seasonal, prof_v + c["off"], pred_l)
        floor = 1e-9 + 1e-6 * np.abs(pred_l)
        floor = np.maximum(floor, np.where(np.isfinite(c["quant"]), p.quantum * c["quant"], 0.0))
        if p.weekly:
            wk = allprof[:, p.max_slots:]
            uw = np.mod(t, 604800.0) / 3600.0 - 0.5
            i0 = np.floor(uw)
            w1 = uw - i0
            i0 = np.mod(i0.astype(np.int64), WEEK_KNOTS)
            i1 = np.mod(i0 + 1, WEEK_KNOTS)
            v0, v1 = wk[rows, i0].astype(float), wk[rows, i1].astype(float)
            f0, f1 = np.isfinite(v0), np.isfinite(v1)
            wval = np.where(f0 & f1, (1 - w1) * v0 + w1 * v1, np.where(f0, v0, v1))
            weekly = (f0 | f1) & ((t - c["t0"]) >= 7 * 86400.0)
            wval = np.where(np.isfinite(wval), wval, 0.0)
            wmult = (c["xmin"] >= 0) & (wval > 0)
            pred_w = np.where(weekly, np.where(wmult, wval * c["fac_w"], wval + (c["fac_w"] - 1.0)), pred_l)
        else:
            weekly = np.zeros(len(x), bool)
            pred_w = pred_l
        preds = [pred_l, pred_s, pred_w]
        keys = (("su_l", "sd_l", "m"), ("su_s", "sd_s", "m_s"), ("su_w", "sd_w", "m_w"))
        sus = [np.maximum(c[u], floor) for u, _, _ in keys]
        sds = [np.maximum(c[d], floor) for _, d, _ in keys]
        active = np.stack([np.ones(len(x), bool), seasonal, weekly])

        # surprise: the short EW mean of z per predictor; the least surprised good one decides
        hl_short = p.short_sec / dt
        if p.short_max_pts > 0:
            hl_short = np.minimum(hl_short, p.short_max_pts)
        a = alpha(hl_short)
        ms, zs, zraw = [], [], []
        for j, (_, _, key) in enumerate(keys):
            r = x - preds[j]
            z = np.clip(np.where(r >= 0, r / sus[j], r / sds[j]), -p.zclip, p.zclip)
            mj = (1.0 - a) * np.where(first, 0.0, c[key]) + a * z
            c[key][:] = mj
            ms.append(mj)
            zs.append(a * z)
            zraw.append(z)
        M = np.stack(ms)
        if p.agree_ratio > 0:
            SP = np.stack([u + d for u, d in zip(sus, sds)])
            best_sp = np.where(active, SP, np.inf).min(axis=0)
            active = active & (SP <= p.agree_ratio * best_sp)
        Mu, Md = M, -M
        if p.agree_now:
            Z = np.stack(zs)
            Mu, Md = np.maximum(M, Z), np.maximum(-M, -Z)
        up = np.maximum(np.where(active, Mu, np.inf).min(axis=0), 0.0)
        down = np.maximum(np.where(active, Md, np.inf).min(axis=0), 0.0)
        which = np.argmin(np.where(active, np.abs(M), np.inf), axis=0)
        norm = np.sqrt(a / (2.0 - a))
        pph = np.maximum(3600.0 / dt, 1.0)
        gain_pt = pph ** (-p.rate_pow) * np.sqrt(n / (n + p.n0))
        gain = gain_pt / norm
        Su, Sd = up * gain, down * gain
        sustained = None  # what the expected range needs of the sustained view, when it is on
        if p.sus_weight > 0:
            # sustained shift: a one-sided CUSUM per side, so a steady 2-sigma shift adds up
            # point by point where the short mean only creeps towards it (back to 0 once the
            # values fall back). Its z: the time-of-day error over a spread that scales with
            # the square root of the prediction for a series that never went negative (counts:
            # a night's 18 orders a minute are not as noisy as the evening's 120)
            counts = c["xmin"] >= 0
            roots = [np.where(counts, np.sqrt(np.maximum(np.abs(pr), 1.0)), 1.0) for pr in (pred_s, pred_w)]
            root = roots[0]
            sn = np.maximum(c["sn"], floor / root)
            # the hour-of-week view, where it is a good one, must see the shift too (weekends)
            vote = [np.ones(len(x), bool), active[2]]
            spreads = [sn * rt for rt in roots]
            zcs = [(x - pr) / sp for pr, sp in zip((pred_s, pred_w), spreads)]
            zu = np.minimum(np.min([np.where(v, zc, np.inf) for v, zc in zip(vote, zcs)], axis=0), p.sus_zmax)
            zd = np.minimum(np.min([np.where(v, -zc, np.inf) for v, zc in zip(vote, zcs)], axis=0), p.sus_zmax)
            warm = n < p.min_points
            # one side at a time: a side adds up only while the other is at 0. The way back
            # from a shift is not a shift the other way: the predictions still carry what
            # they learned while it lasted (a 20-minute spike leaves the time-of-day offset
            # high for an hour), and the side that saw the shift drains first
            cu0, cd0 = c["cus_u"].copy(), c["cus_d"].copy()
            sustained = (gain_pt, (cu0, cd0), list(zip((pred_s, pred_w), spreads, vote)))
            c["cus_u"][:] = np.where(warm | (cd0 > 0), 0.0, np.maximum(cu0 + zu - p.sus_k, 0.0))
            c["cus_d"][:] = np.where(warm | (cu0 > 0), 0.0, np.maximum(cd0 + zd - p.sus_k, 0.0))
            Su = np.maximum(Su, p.sus_weight * gain_pt * c["cus_u"])
            Sd = np.maximum(Sd, p.sus_weight * gain_pt * c["cus_d"])
        S = Su if p.direction == "up" else Sd if p.direction == "down" else np.maximum(Su, Sd)

        # calibration: the exponential tail of this series' own surprises
        u = p.tail_u
        lpu = -np.log(c["pu"])
        beta = c["beta"]
        below = np.minimum(lpu / u, 1.0)
        C = p.tail_blend * np.where(S > u, lpu + (S - u) / beta, S * below) + (1.0 - p.tail_blend) * S
        live = n >= p.min_points
        score = np.where(live, np.clip(C / (p.decades * math.log(10.0)), 0.0, 1.0), 0.0)
        low, high = expected_range(p, c, preds, sus, sds, active, gain, lpu, beta, live, threshold, bounds,
                                   sustained)
        side = np.where(live & (S > 0), np.sign(Su - Sd), 0).astype(np.int8)

        # learning, after scoring: calibration, spreads, level, offset, profiles, domain
        k = c["k"]
        w = np.where(live, np.maximum(1.0 / p.tail_hl, 1.0 / (k + p.tail_prior / math.exp(-u))), 0.0)
        exc = S > u
        c["pu"][:] = (1.0 - w) * c["pu"] + w * exc
        wb = np.where(live & exc, np.maximum(1.0 / (p.tail_hl * math.exp(-u)), 1.0 / (k * c["pu"] + p.tail_prior)), 0.0)
        beta[:] = (1.0 - wb) * beta + wb * np.minimum(S - u, 30.0)
        k += live
        a_sp = np.maximum(alpha(p.hl_spread), 1.0 / (n + 1.0))
        early = n < 3
        keep = np.where(first, 0.0, 1.0 - a_sp)
        add = np.where(first, 0.0, a_sp)
        resid = []
        for j, (ku, kd, _) in enumerate(keys):
            r = x - preds[j]
            r = np.where(early, r, np.clip(r, -p.clip * np.maximum(c[kd], floor), p.clip * np.maximum(c[ku], floor)))
            resid.append(r)
            if j < 2 or p.weekly:
                c[ku][:] = keep * c[ku] + add * 2.0 * np.maximum(r, 0.0)
                c[kd][:] = keep * c[kd] + add * 2.0 * np.maximum(-r, 0.0)
        hl_lev, hl_off = p.hl_level, p.hl_offset
        if p.hl_min_sec > 0:
            hl_lev = np.maximum(hl_lev, p.hl_min_sec / dt)
            hl_off = np.maximum(hl_off, p.hl_min_sec / dt)
        if p.sus_weight > 0:
            an = np.abs(x - pred_s) / root
            an = np.where(early, an, np.minimum(an, p.clip * sn))
            c["sn"][:] = keep * c["sn"] + add * an
        c["L"] += np.maximum(alpha(hl_lev), 1.0 / (n + 1.0)) * resid[0]
        lim_s = np.where(early, np.inf, p.clip * np.maximum(0.5 * (c["su_s"] + c["sd_s"]), floor))
        c["off"] += np.where(seasonal, alpha(hl_off), 0.0) * np.clip(x - prof_v - c["off"], -lim_s, lim_s)
        have = np.isfinite(prof[rows, slot])
        target = np.where(have, prof_v + np.clip(x - prof_v, -lim_s, lim_s), x)
        per_slot = np.maximum(p.period / dt / np.maximum(K, 1), 1.0)  # points per slot per day
        days = (t - c["t0"]) / p.period
        g = np.maximum(alpha(p.hl_profile * per_slot), 1.0 / (np.floor(days) * per_slot + 1.0))
        newv = np.where(have, prof_v + g * (target - prof_v), target)
        learn = K >= 2
        prof[rows[learn], slot[learn]] = newv[learn]
        if p.weekly:
            self._learn_week(c, wk, rows, x, t, dt, wval, wmult, weekly, i0, i1, w1, v0, v1, f0, f1,
                             early, floor, hl_off)
        step = np.abs(x - c["xlast"])
        c["quant"][:] = np.where(~first & (step > 0), np.minimum(c["quant"], step), c["quant"])
        c["xlast"][:] = x
        c["xmin"][:] = np.minimum(c["xmin"], x)
        c["xmax"][:] = np.maximum(c["xmax"], x)
        n += 1
        return score, low, high, side, ~live, np.choose(which, preds), which.astype(np.int8)

    def _learn_week(self, c, wk, rows, x, t, dt, wval, wmult, weekly, i0, i1, w1, v0, v1, f0, f1,
                    early, floor, hl_off) -> None:
        """The hour-of-week factor (an offset, stored as factor - 1, for series that went
        negative) and the two knots around the point, moved towards its value."""
        p = self.p
        lim_w = np.where(early, np.inf, p.clip * np.maximum(0.5 * (c["su_w"] + c["sd_w"]), floor))
        wv = np.maximum(wval, 1e-12)
        step_f = np.where(wmult, np.clip(x / wv - c["fac_w"], -lim_w / wv, lim_w / wv),
                          np.clip(x - wval - (c["fac_w"] - 1.0), -lim_w, lim_w))
        c["fac_w"] += np.where(weekly, alpha(hl_off), 0.0) * step_f
        pps = np.maximum(3600.0 / dt, 1.0)
        weeks = (t - c["t0"]) / 604800.0
        gw = np.maximum(alpha(p.hl_week * pps), 1.0 / (np.floor(weeks) * pps + 1.0))
        for ii, ww, vv, ff in ((i0, 1 - w1, v0, f0), (i1, w1, v1, f1)):
            tgt = np.where(ff, vv + np.clip(x - wval, -lim_w, lim_w), x)
            wk[rows, ii] = np.where(ff, vv + gw * ww * (tgt - vv), np.where(ww >= 0.5, x, np.nan))
