"""A PNG of a replay: the series with its expected range, label windows and detections, and
the calibrated score with the threshold (matplotlib, which PyOD already depends on). For a
forecast rule also the forecasts (the central path and its interval, from where each warning
or anomaly started and from the last row) and, for an early warning, its line, the expected
crossings and, below, how long until the expected crossing at each row."""

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
    warning = replay.crossing_at is not None
    if len(onsets):
        top.scatter([when[i] for i in onsets], replay.values[onsets], color="red", zorder=3, s=24,
                    label="warning" if warning else "detection")
    draw_forecasts(top, replay.forecasts)
    top.legend(loc="upper left", fontsize=8)
    top.set_title(title or "backtest")
    (_time_to_crossing if warning else _score_panel)(bottom, when, replay)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _score_panel(ax, when, replay) -> None:
    """The calibrated score under the series, against the threshold. Scores near 1 matter:
    they are plotted as "nines" (0.999 -> 3) so 0.99 and 0.9999 stand apart."""
    ax.plot(when, nines(replay.score), lw=0.6, color="#555555", label="score")
    thr = replay.threshold[np.isfinite(replay.threshold)]
    if len(thr):
        ax.axhline(nines(float(np.median(thr))), color="red", lw=0.8, ls="--", label="threshold")
    top_nines = int(np.ceil(np.nanmax(nines(replay.score)))) if np.isfinite(replay.score).any() else 3
    ticks = np.arange(0, max(top_nines, 3) + 1)
    ax.set_yticks(ticks, ["0"] + [f"{1 - 10.0 ** -t:.{t}f}" for t in ticks[1:]])
    ax.set_ylabel("calibrated score")
    ax.legend(loc="upper left", fontsize=8)

def draw_forecasts(ax, forecasts) -> None:
    """Each forecast view (Detector.forecast) as a dashed path with its interval; an early
    warning's line and expected crossings."""
    line_drawn = False
    for k, (_, view) in enumerate(forecasts):
        t = [datetime.fromtimestamp(x, timezone.utc) for x in view["ts"]]
        first = k == 0
        ax.plot(t, view["mean"], color="#ff7f0e", lw=1.0, ls="--", label="forecast" if first else None)
        if view.get("lower") and view.get("upper"):
            ax.fill_between(t, view["lower"], view["upper"], color="#ff7f0e", alpha=0.12, lw=0,
                            label="forecast interval" if first else None)
        if view.get("line") is not None and not line_drawn:
            ax.axhline(view["line"], color="#d62728", lw=0.8, ls=":", label="line")
            line_drawn = True
        if view.get("crossing_at"):
            ax.scatter([datetime.fromtimestamp(view["crossing_at"], timezone.utc)], [view["line"]], marker="x",
                       color="#d62728", zorder=4, s=30, label="expected crossing" if first else None)


def _time_to_crossing(ax, when, replay) -> None:
    """Below an early warning: hours from each row to its expected crossing."""
    hours = (replay.crossing_at - replay.ts) / 3600.0
    ok = np.isfinite(hours)
    ax.scatter([when[i] for i in np.flatnonzero(ok)], hours[ok], s=4, color="#555555",
               label="time to the expected crossing")
    within = [v.get("within") for _, v in replay.forecasts if v.get("within")]
    if within:
        ax.axhline(within[0] / 3600.0, color="red", lw=0.8, ls="--", label="horizon (within)")
    ax.set_ylabel("hours ahead")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", fontsize=8)
