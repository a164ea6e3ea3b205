"""Calibration: raw model scores -> a score in [0, 1] that means the same for every model.

A calibrated score is the estimated probability that a *normal* point scores lower: the
empirical quantile of the raw score among the model's training scores (mid-rank for ties),
and, beyond the largest training score, a generalised Pareto tail fitted to the top 10 % of
the training scores (peaks over threshold, as in SPOT), so scores keep growing with the raw
score instead of sticking at n/(n+1), and a heavy-tailed (bursty) series needs a bigger
excess than a light-tailed one to reach the same score. A threshold of 0.9999 then means "about one normal point in 10,000
reaches it", whatever the model and whatever the scale of its raw scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TAIL_FROM = 0.9  # the exponential tail is fitted to the training scores above this quantile
KEEP = 2001  # quantile knots kept (a fitted model stays small in memory and in the store)


def fit_gpd(excess: np.ndarray) -> tuple[float, float]:
    """(scale, shape) of a generalised Pareto distribution fitted to excesses (moments).

    The method of moments is closed-form and stable for the shapes that matter here; the
    shape is kept in [-0.5, 0.5] (bounded to heavy, but with a finite variance).
    """
    excess = excess[np.isfinite(excess)]
    if len(excess) < 2:
        return (float(excess.mean()) if len(excess) else 0.0), 0.0
    m, v = float(excess.mean()), float(excess.var())
    if m <= 0:
        return 0.0, 0.0
    if v <= 0:
        return m, 0.0
    xi = float(np.clip(0.5 * (1.0 - m * m / v), -0.5, 0.5))
    return m * (1.0 - xi), xi


@dataclass(frozen=True)
class Calibrator:
    """A monotone map from raw scores to [0, 1], learned from training scores."""

    knots: np.ndarray  # raw score at each quantile level (ascending)
    levels: np.ndarray  # mid-rank quantile levels of the knots, in (0, 1)
    top: float  # the largest training score
    top_level: float  # the level at `top`
    cut: float  # the tail model starts here (the TAIL_FROM quantile)
    sigma: float  # GPD scale of the excesses over `cut` (0: any excess over `top` is certain)
    xi: float  # GPD shape (0: exponential tail; > 0 heavy tail; < 0 bounded)
    n: int  # training scores seen

    @classmethod
    def fit(cls, scores: np.ndarray) -> "Calibrator":
        """Learn the map from the raw scores of (normal) training points."""
        s = np.sort(np.asarray(scores, dtype=float)[np.isfinite(scores)])
        n = len(s)
        if n == 0:
            return cls(np.array([0.0]), np.array([0.5]), 0.0, 0.5, 0.0, 0.0, 0.0, 0)
        uniq, first = np.unique(s, return_index=True)
        counts = np.diff(np.append(first, n))
        levels = (first + 0.5 * counts + 0.5) / (n + 1)  # mid-rank of each distinct value
        if len(uniq) > KEEP:  # keep evenly spaced knots, always the last one
            pick = np.unique(np.linspace(0, len(uniq) - 1, KEEP).round().astype(np.int64))
            uniq, levels = uniq[pick], levels[pick]
        cut = float(s[int(TAIL_FROM * (n - 1))])
        sigma, xi = fit_gpd(s[s > cut] - cut)
        return cls(uniq, levels, float(s[-1]), float(levels[-1]), cut, sigma, xi, n)

    def _survival(self, excess: np.ndarray) -> np.ndarray:
        """GPD survival function of excesses over `cut`."""
        z = np.maximum(excess, 0.0) / self.sigma
        if abs(self.xi) < 1e-6:
            return np.exp(-z)
        base = np.maximum(1.0 + self.xi * z, 0.0)
        return np.power(base, -1.0 / self.xi, where=base > 0, out=np.zeros_like(base))

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        """Calibrated scores in [0, 1] (NaN stays NaN)."""
        raw = np.asarray(raw, dtype=float)
        out = np.interp(raw, self.knots, self.levels, left=0.0, right=self.top_level)
        if len(self.knots) > 1:  # below the lowest knot: as unusual as the lowest training point
            out = np.where(raw < self.knots[0], self.levels[0] * 0.5, out)
        beyond = raw > self.top
        if beyond.any():
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                if self.sigma > 0:  # P(X > raw | X > top) from the tail model
                    decay = self._survival(raw - self.cut) / max(self._survival(np.array([self.top - self.cut]))[0], 1e-300)
                else:
                    decay = np.zeros_like(raw)
            out = np.where(beyond, 1.0 - (1.0 - self.top_level) * np.minimum(decay, 1.0), out)
        return np.where(np.isnan(raw), np.nan, np.clip(out, 0.0, 1.0))
