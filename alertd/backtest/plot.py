"""A PNG of a replay: the series with its expected range, label windows and detections, and
the calibrated score with the threshold (matplotlib, which PyOD already depends on)."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np


def nines(score):
    """-log10(1 - score): 0.9 -> 1, 0.999 -> 3 (capped at 9)."""
    return -np.log10(np.clip(1.0 - np.asarray(score, dtype=float), 1e-9, 1.0))


def plot_replay(replay, path, *, title: str = "", windows=()) -> None:
    """Draw `replay` (a `backtest.Replay`) to `path`; `windows` are inclusive row ranges."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    when = [datetime.fromtimestamp(t, timezone.utc) for t in replay.ts]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(14, 6.5), sharex=True,
                                      gridspec_kw={"height_ratios": [2, 1]})
    top.plot(when, replay.values, lw=0.7, color="#1f77b4", label="value")
    lo, hi = replay.lower, replay.upper
    if np.isfinite(lo).any() or np.isfinite(hi).any():
        band_lo = np.where(np.isfinite(lo), lo, np.nanmin(replay.values))
        band_hi = np.where(np.isfinite(hi), hi, np.nanmax(replay.values))
        top.fill_between(when, band_lo, band_hi, color="#2ca02c", alpha=0.15, lw=0, label="expected range")
    for k, (left, right) in enumerate(windows):
        for ax in (top, bottom):
            ax.axvspan(when[left], when[min(right, len(when) - 1)], color="orange", alpha=0.25,
                       label="labelled window" if (k == 0 and ax is top) else None)
    onsets = np.flatnonzero(replay.onsets)
    if len(onsets):
        top.scatter([when[i] for i in onsets], replay.values[onsets], color="red", zorder=3, s=24,
                    label="detection")
    top.legend(loc="upper left", fontsize=8)
    top.set_title(title or "backtest")
    # scores near 1 matter: plot them as "nines" (0.999 -> 3) so 0.99 and 0.9999 stand apart
    bottom.plot(when, nines(replay.score), lw=0.6, color="#555555", label="score")
    thr = replay.threshold[np.isfinite(replay.threshold)]
    if len(thr):
        bottom.axhline(nines(float(np.median(thr))), color="red", lw=0.8, ls="--", label="threshold")
    top_nines = int(np.ceil(np.nanmax(nines(replay.score)))) if np.isfinite(replay.score).any() else 3
    ticks = np.arange(0, max(top_nines, 3) + 1)
    bottom.set_yticks(ticks, ["0"] + [f"{1 - 10.0 ** -t:.{t}f}" for t in ticks[1:]])
    bottom.set_ylabel("calibrated score")
    bottom.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
