"""Small generated series for detector tests (no external data): seeded, seasonal, with
optional injected anomalies."""

from __future__ import annotations

import numpy as np

T0 = 1_750_032_000.0  # a Monday 00:00 UTC


def daily(days: float = 4, step: float = 600.0, seed: int = 0, noise: float = 3.0, weekly: bool = False):
    """(ts, values): orders per minute with a daily rhythm (night low, evening peak)."""
    rng = np.random.default_rng(seed)
    ts = T0 + np.arange(int(days * 86400 / step)) * step
    hour = (ts % 86400) / 3600
    base = 60 + 50 * np.exp(-0.5 * ((hour - 19) / 3) ** 2) + 20 * np.exp(-0.5 * ((hour - 12) / 2) ** 2)
    if weekly:
        weekday = ((ts - T0) // 86400).astype(int) % 7
        base = base * np.where(weekday >= 5, 0.6, 1.0)  # quiet weekends
    return ts, base + rng.normal(0, noise, len(ts))


def write_csv(path, ts, values) -> None:
    from datetime import datetime, timezone
    with open(path, "w") as fh:
        fh.write("timestamp,value\n")
        for t, v in zip(ts, values):
            stamp = datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
            fh.write(f"{stamp},{'' if not np.isfinite(v) else repr(float(v))}\n")
