"""Robust statistics the detectors share: median and MAD per row, and z-scores as scores."""

from __future__ import annotations

import numpy as np

MAD_SCALE = 1.4826  # makes the MAD estimate the standard deviation of normal data


def nan_median_rows(a: np.ndarray, counts: np.ndarray | None = None, *,
                    presorted: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Row medians of `a` ignoring NaN, and the finite count per row (NaN for empty rows).

    One sort per call (NaN sorts last; skipped when `presorted`), so it stays vectorised and
    warning-free where `np.nanmedian` falls back to slow masked arrays.
    """
    s = a if presorted else np.sort(a, axis=1)
    if counts is None:
        counts = a.shape[1] - np.count_nonzero(np.isnan(s), axis=1)
    k = np.maximum(counts, 1)
    lo = np.take_along_axis(s, ((k - 1) // 2)[:, None], axis=1)[:, 0]
    hi = np.take_along_axis(s, (k // 2)[:, None], axis=1)[:, 0]
    med = 0.5 * (lo + hi)
    med[counts == 0] = np.nan
    return med, counts


def score_from_z(z: np.ndarray, threshold: float) -> np.ndarray:
    """Calibrated score in [0, 1): monotone in z, exactly 0.5 at z == threshold."""
    return -np.expm1(-np.log(2.0) * np.maximum(z, 0.0) / threshold)
