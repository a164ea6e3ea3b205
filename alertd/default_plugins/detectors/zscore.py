"""The `zscore` detector: a rolling robust z-score (median and MAD), vectorised over series.

For each series, z = |x - median| / (1.4826 * MAD) over the last `window` points (NaN in the
history is ignored). The MAD is floored at `min_mad` and at `min_mad_ratio * |median|`, so a
constant series neither divides by zero nor fires on an identical value. The score maps z
monotonically into [0, 1) as 1 - 2**(-z / threshold), so z == threshold scores exactly 0.5.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from alertd import hookimpl
from alertd.base import Detector
from alertd.detect.robust import MAD_SCALE, nan_median_rows, score_from_z
from alertd.model import Batch, Scores, Status

SCORE_THRESHOLD = 0.5


class ZScore(Detector):
    """Flags points more than `threshold` robust standard deviations from the rolling median.

    Warm-up (WARMING_UP) until a series has seen `min_history` points; NaN or infinite values
    are SKIPPED. The expected range is median -/+ threshold * 1.4826 * MAD.
    """

    type_name = "zscore"

    @dataclass(frozen=True)
    class Params:
        """`window` points of history; `threshold` in robust z units; `direction` to watch."""

        window: int = 30
        threshold: float = 4.0
        direction: Literal["both", "up", "down"] = "both"
        min_history: int = 10
        min_mad: float = 1e-9
        min_mad_ratio: float = 0.001

        def check(self) -> None:
            if self.window < 3:
                raise ValueError(f"window must be at least 3 points, got {self.window}")
            if self.threshold <= 0:
                raise ValueError(f"threshold must be above 0, got {self.threshold:g}")
            if self.min_history < 1:
                raise ValueError(f"min_history must be at least 1, got {self.min_history}")
            if self.min_mad < 0 or self.min_mad_ratio < 0:
                raise ValueError("min_mad and min_mad_ratio must not be negative")

    def __init__(self, params, context):
        super().__init__(params, context)
        self.window = params.window
        self.min_history = params.min_history
        self._context = f"from the last {params.window} points"

    def score(self, batch: Batch) -> Scores:
        p = self.params
        n = len(batch)
        values = np.asarray(batch.values, dtype=float)
        hist = np.asarray(batch.history, dtype=float).reshape(n, -1)[:, -p.window:]
        if not np.isfinite(hist).all():
            hist = np.where(np.isfinite(hist), hist, np.nan)
        hist = np.sort(hist, axis=1)  # a copy: NaN last, finite values ascending
        med, counts = nan_median_rows(hist, presorted=True)
        np.subtract(hist, med[:, None], out=hist)
        np.abs(hist, out=hist)
        hist.sort(axis=1)
        mad, _ = nan_median_rows(hist, counts, presorted=True)
        scale = MAD_SCALE * np.maximum(mad, np.maximum(p.min_mad, p.min_mad_ratio * np.abs(med)))
        scale = np.where(scale > 0, scale, np.nan)  # min_mad 0 and a constant zero series
        with np.errstate(invalid="ignore", divide="ignore"):
            signed = (values - med) / scale
            if np.isnan(scale).any():  # zero spread: any change is infinitely far
                signed = np.where(np.isnan(scale) & np.isfinite(med),
                                  np.sign(values - med) * np.where(values == med, 0.0, np.inf), signed)
        z = np.abs(signed) if p.direction == "both" else signed if p.direction == "up" else -signed
        z = np.nan_to_num(z, nan=0.0, posinf=np.inf, neginf=-np.inf)

        finite = np.isfinite(values)
        need = max(1, min(p.min_history - 1, p.window))
        warm = self.warming_up(batch) | (counts < need)
        with np.errstate(invalid="ignore"):
            anomalous = z > p.threshold
        status = np.where(anomalous, Status.ANOMALOUS, Status.OK).astype(np.int8)
        status[warm] = Status.WARMING_UP
        status[~finite] = Status.SKIPPED
        judged = (status == Status.OK) | (status == Status.ANOMALOUS)
        score = np.where(judged, score_from_z(z, p.threshold), np.nan)

        half = p.threshold * scale
        lower = med - half if p.direction != "up" else np.full(n, np.nan)
        upper = med + half if p.direction != "down" else np.full(n, np.nan)
        return Scores(status=status, score=score, threshold=np.full(n, SCORE_THRESHOLD),
                      lower=np.where(warm, np.nan, lower), upper=np.where(warm, np.nan, upper),
                      context=[self._context] * n)


@hookimpl
def register_detectors(register):
    register(ZScore)
