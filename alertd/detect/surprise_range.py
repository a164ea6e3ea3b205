"""The expected range of the seasonal-surprise score.

`expected_range` inverts the score: the values which, sustained, keep the short mean of z
and hence the score below the threshold, on the sides the rule watches, inside the metric's
domain (given bounds, else learned: never below 0 for a series that never was, never above
1 for a ratio that always stayed within [0, 1]). A point outside it is what fires; a point
back inside it is what clears.
"""

from __future__ import annotations

import math

import numpy as np


def expected_range(p, c, preds, sus, sds, active, gain, lpu, beta, live, threshold, bounds, sustained=None):
    """(low, high) per series; see the module docstring. `c`: the state's columns;
    `sustained`: (gain per point, (CUSUM up, down) before this point) when that view is on."""
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
    if sustained is not None:
        # or the sustained shift fires: the value that takes its CUSUM to the threshold now
        # (at least its allowance away: a value nearer the prediction never keeps it going)
        gain_pt, (cu, cd), views = sustained
        cstar = Sstar / np.maximum(p.sus_weight * gain_pt, 1e-300) + p.sus_k
        need_u, need_d = np.maximum(cstar - cu, p.sus_k), np.maximum(cstar - cd, p.sus_k)
        need_u, need_d = np.where(cd > 0, np.inf, need_u), np.where(cu > 0, np.inf, need_d)  # one side at a time
        high_s = np.max([np.where(v, pr + need_u * sp, -np.inf) for pr, sp, v in views], axis=0)
        low_s = np.min([np.where(v, pr - need_d * sp, np.inf) for pr, sp, v in views], axis=0)
        high = np.where(need_u <= p.sus_zmax, np.minimum(high, high_s), high)
        low = np.where(need_d <= p.sus_zmax, np.maximum(low, low_s), low)
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
