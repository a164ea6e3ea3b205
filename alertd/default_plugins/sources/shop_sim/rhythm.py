"""The shop's normal rhythm and its noise: counter-based random numbers, daily and weekly
traffic profiles per region's time zone.

Noise is a pure function of (seed, series id, slot, stream): a splitmix64 hash vectorised
over slots, never a stateful generator, so any slot can be computed alone and every
re-computation (poll, back-fill, restart, backtest) gives the same value.

Two rhythms: `DEMO` is the demo's (as it always was: the same day every day, busier
weekends); `WEEK` is the labelled week's, closer to a real shop: weekend dips, each day a
little busier or quieter than the last (a few percent), and a slow drift within the day.
Everything a rhythm does is *normal*: no label is ever written for it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

M64 = (1 << 64) - 1
DAY = 86400.0
REGION_TZ = {"eu": 1, "us": -5, "apac": 8}  # hours from UTC, for the daily rhythm
REGION_PEAK = {"eu": 140.0, "us": 180.0, "apac": 90.0}  # evening orders per minute


_GOLDEN, _C1, _C2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)


def mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on uint64 arrays (wrapping arithmetic)."""
    x = x + _GOLDEN
    x = (x ^ (x >> _S30)) * _C1
    x = (x ^ (x >> _S27)) * _C2
    return x ^ (x >> _S31)


def stable_id(text: str) -> int:
    """A 64-bit id of a text that is the same in every process (unlike `hash`)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


class Noise:
    """Counter-based random numbers for one seed: `uniform` in [0, 1) and standard `normal`
    per (series id, integer counter, stream)."""

    def __init__(self, seed: int):
        self.seed = np.uint64(seed & M64)

    def uniform(self, sid: int, counters: np.ndarray, stream: int = 0) -> np.ndarray:
        counters = np.asarray(counters).astype(np.int64).astype(np.uint64)
        h = mix(np.full(counters.shape, self.seed ^ np.uint64(sid & M64), dtype=np.uint64))
        h = mix(h ^ counters)
        h = mix(h ^ np.uint64(stream + 1))
        return (h >> _S11).astype(np.float64) * 2.0 ** -53

    def normal(self, sid: int, counters: np.ndarray, stream: int = 1) -> np.ndarray:
        """Box-Muller from streams `stream` and `stream + 1`."""
        u1, u2 = self.uniform(sid, counters, stream), self.uniform(sid, counters, stream + 1)
        return np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * np.pi * u2)

    def counts(self, sid: int, counters: np.ndarray, mean: np.ndarray, stream: int = 5) -> np.ndarray:
        """Whole non-negative counts around `mean` (Poisson-like spread: sqrt(mean))."""
        z = self.normal(sid, counters, stream)
        return np.maximum(0.0, np.round(mean + np.sqrt(np.maximum(mean, 0.0)) * z))


def bump(hour: np.ndarray, centre: float, width: float) -> np.ndarray:
    """A Gaussian bump on the 24-hour circle."""
    d = np.abs(hour - centre)
    return np.exp(-0.5 * (np.minimum(d, 24.0 - d) / width) ** 2)


@dataclass(frozen=True)
class Rhythm:
    """How traffic moves in a normal week, as shares of a region's evening peak.

    `weekday` scales each local day (Mon..Sun); `weekend_afternoon` adds an afternoon bump on
    Saturdays and Sundays; `day_sd` is the spread of one region-day's level around its
    weekday's (clipped at 2 sd), `drift_sd` that of a slow drift with knots every
    `drift_hours` (linear in between). Both are seeded per region.
    """

    weekday: tuple[float, ...]
    weekend_afternoon: float
    day_sd: float = 0.0
    drift_sd: float = 0.0
    drift_hours: float = 3.0

    @property
    def max_factor(self) -> float:
        """The largest level factor the day spread and drift can reach."""
        return 1.0 + 2.0 * self.day_sd + 2.0 * self.drift_sd

    def profile(self, local_ts: np.ndarray) -> np.ndarray:
        """Share of peak traffic at local times: quiet nights, lunch bump, evening peak."""
        local_ts = np.asarray(local_ts, dtype=np.float64)
        hour = (local_ts % DAY) / 3600.0
        weekday = ((local_ts // DAY).astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
        p = 0.1 + 0.35 * bump(hour, 11, 3) + 0.2 * bump(hour, 13, 1.2) + 0.85 * bump(hour, 20.5, 2.2)
        p = p + np.where(weekday >= 5, self.weekend_afternoon * bump(hour, 15, 3), 0.0)
        return p * np.asarray(self.weekday)[weekday]

    def level(self, noise: Noise, sid: int, local_ts: np.ndarray) -> np.ndarray:
        """The region's slow level factor at local times (1 without spread or drift)."""
        local_ts = np.asarray(local_ts, dtype=np.float64)
        out = np.ones(local_ts.shape)
        for sd, span, stream in ((self.day_sd, DAY, 11), (self.drift_sd, 3600.0 * self.drift_hours, 13)):
            if sd <= 0:
                continue
            pos = local_ts / span - 0.5  # knots at the middle of each day (each drift span)
            k = np.floor(pos).astype(np.int64)
            frac = pos - k
            k0 = int(k.min())
            knots = np.clip(noise.normal(sid, np.arange(k0, int(k.max()) + 2), stream), -2, 2)
            a, b = knots[k - k0], knots[k - k0 + 1]
            out = out * (1.0 + sd * (a + (b - a) * frac))
        return out


DEMO = Rhythm(weekday=(0.95, 0.97, 1.0, 1.0, 1.05, 1.15, 1.2), weekend_afternoon=0.2)
WEEK = Rhythm(weekday=(1.0, 0.98, 1.0, 1.02, 1.04, 0.8, 0.86), weekend_afternoon=0.15,
              day_sd=0.035, drift_sd=0.02)


def daily_profile(local_ts: np.ndarray) -> np.ndarray:
    """The demo rhythm's share of peak traffic at local times (kept for plugin authors)."""
    return DEMO.profile(local_ts)


def region_peak(region: str) -> float:
    """Evening orders per minute of a region (a stable made-up figure for unknown names)."""
    return REGION_PEAK.get(region, 60.0 + stable_id(region) % 100)


def region_offset(region: str) -> float:
    """Seconds from UTC to the region's local time (UTC for unknown names)."""
    return 3600.0 * REGION_TZ.get(region, 0)
