"""Stock per SKU: sold with the shop's orders, refilled by scheduled deliveries.

Each SKU is delivered every `period` (12 h or 24 h) at a fixed UTC time. A delivery fills
the stock up to what the shop's planner expects to sell until the next delivery is due plus
`MARGIN_HOURS` more, from the rhythm's profile at its highest day level (the planner cannot
know whether tomorrow is a busy day). Between deliveries the SKU sells a share of all orders
(whole units, noisy), so the level falls fast in the evening and slowly at night, and stays
at 0 once sold out. A delivery on time therefore arrives with about `MARGIN_HOURS` of sales
left (more on a quiet day): a sensible early warning never fires on it. A late or missed
delivery (`restock_late`, `restock_missed`) or a short one (`stock_out`, which empties the
stock exactly at its `at`) runs it out.

A level is a pure function of the slot: the sales since the last delivery before it, each
a counter-based random count (alertd/default_plugins/sources/shop_sim/rhythm.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .rhythm import DAY, Noise, Rhythm, region_offset, region_peak
from .scenarios import occurrences

MARGIN_HOURS = 3.0  # expected sales left when a delivery on schedule arrives
_KNOWN = {  # share of orders, delivery period (h), delivery time (h after 00:00 UTC)
    "sku-tshirt": (0.08, 12, 6.0), "sku-hoodie": (0.05, 12, 7.0),
    "sku-mug": (0.04, 24, 8.0), "sku-cap": (0.03, 24, 5.0)}


@dataclass(frozen=True)
class SkuPlan:
    """How one SKU sells and is delivered: share of orders (units per order), delivery
    period and time of day (seconds after 00:00 UTC)."""

    sku: str
    sid: int  # the noise id of its stock series
    share: float
    period: float
    phase: float

    def as_dict(self) -> dict:
        return {"sku": self.sku, "share_of_orders": self.share, "delivery_every_s": self.period,
                "delivery_at_utc_s": self.phase, "margin_hours": MARGIN_HOURS}


def plan_for(sku: str, sid: int) -> SkuPlan:
    """The SKU's plan: known SKUs have theirs, others a stable one made from their id."""
    share, hours, at = _KNOWN.get(sku, (0.02 + (sid % 4) / 100, 12 if sid % 2 else 24, float(sid % 24)))
    return SkuPlan(sku, sid, share, hours * 3600.0, at * 3600.0)


@dataclass(frozen=True)
class Delivery:
    """A delivery arriving at slot `slot` that fills the stock up to `level`, or (a short
    one) with exactly what sells until slot `short_until`. `note` says why it is off schedule."""

    slot: int
    level: float
    short_until: int | None = None
    note: str = ""


class Stock:
    """Stock levels of every SKU (see the module docstring)."""

    def __init__(self, plans: list[SkuPlan], specs, cycle: float, sim_start: float, step: float, noise: Noise,
                 regions, rhythm: Rhythm):
        self.plans = {p.sku: p for p in plans}
        self.specs = [(s, t) for s, t in specs if s.kind in ("stock_out", "restock_late", "restock_missed")]
        self.cycle, self.sim_start, self.step, self.noise = cycle, sim_start, step, noise
        self.regions, self.rhythm = tuple(regions), rhythm
        longest = max([s.duration for s, _ in self.specs] + [0.0])
        self.lookback = 3 * DAY + longest
        self._memo: dict[str, tuple[int, int, np.ndarray]] = {}  # see _sold
        self._fill: dict[tuple[str, float], float] = {}  # see fill_level

    def expected_sales(self, plan: SkuPlan, start: float, end: float) -> float:
        """What the planner expects the SKU to sell in [start, end): the rhythm's profile at
        its highest day level, on a 5-minute grid."""
        t = np.arange(start, end, 300.0)
        per_min = sum(region_peak(r) * self.rhythm.profile(t + region_offset(r)) for r in self.regions)
        return float(np.sum(per_min) * 5.0 * plan.share * self.rhythm.max_factor)

    def fill_level(self, plan: SkuPlan, t: float) -> float:
        """The level a delivery arriving at `t` fills to: expected sales until the next one
        is due, plus MARGIN_HOURS."""
        key = (plan.sku, t)
        if key not in self._fill:
            due = math.floor((t - plan.phase) / plan.period + 1) * plan.period + plan.phase
            self._fill[key] = math.ceil(self.expected_sales(plan, t, due + MARGIN_HOURS * 3600.0))
        return self._fill[key]

    def _slot(self, t: float) -> int:
        return math.ceil(t / self.step - 1e-9)

    def _scheduled(self, plan: SkuPlan, lo: float, hi: float) -> list[float]:
        first = math.floor((lo - plan.phase) / plan.period) * plan.period + plan.phase
        return [float(t) for t in np.arange(first, hi + plan.period, plan.period) if lo <= t <= hi]

    def deliveries(self, plan: SkuPlan, lo: float, hi: float) -> list[Delivery]:
        """The SKU's deliveries in [lo - lookback, hi], in time order, incidents applied."""
        wide_lo, wide_hi = lo - 2 * self.lookback, hi + self.lookback
        times = {t: "" for t in self._scheduled(plan, wide_lo, wide_hi)}  # time -> why off schedule
        short: list[float] = []  # the `at` of stock_out occurrences
        for spec, targets in self.specs:
            if plan.sku not in targets:
                continue
            for begin, end in occurrences(spec.at, spec.duration, self.cycle, self.sim_start, wide_lo, wide_hi):
                if spec.kind == "stock_out":
                    for t in [t for t in times if begin <= t < end]:
                        del times[t]
                    times[end] = "refill after the stock-out"
                    short.append(begin)
                    continue
                due = min((t for t in times if t >= begin and not times[t]), default=None)
                if due is None:
                    continue
                del times[due]
                if spec.kind == "restock_late":
                    times[due + spec.duration] = f"late by {spec.duration / 3600:g} h"
        out = [Delivery(self._slot(t), self.fill_level(plan, t), None, note) for t, note in sorted(times.items())]
        for at in short:  # the last delivery before a stock-out is short: it lasts until `at`
            a = self._slot(at)
            before = [k for k, d in enumerate(out) if d.slot < a]
            if before:
                k = before[-1]
                out[k] = Delivery(out[k].slot, out[k].level, a, out[k].note or "short")
        first, last = self._slot(lo - self.lookback), self._slot(hi)
        return [d for d in out if first <= d.slot <= last]

    def levels(self, sku: str, slots: np.ndarray, demand) -> np.ndarray:
        """Stock at the start of each slot. `demand(ts)` gives expected orders per minute."""
        plan, slots = self.plans[sku], np.asarray(slots, dtype=np.int64)
        if not len(slots):
            return np.empty(0)
        lo, hi = int(slots.min()), int(slots.max())
        deliveries = self.deliveries(plan, lo * self.step, hi * self.step)
        starts = np.array([d.slot for d in deliveries], dtype=np.int64)
        if not len(starts) or starts[0] > lo:
            raise ValueError(f"no delivery of {sku} before slot {lo}")  # (the lookback covers 3 days)
        first = int(starts[starts <= lo][-1])
        last = max([hi] + [d.short_until for d in deliveries if d.short_until is not None])
        base, cum = self._sold(plan, first, last, demand)
        full = np.array([d.level if d.short_until is None
                         else min(d.level, cum[d.short_until - base] - cum[d.slot - base])
                         for d in deliveries])
        k = np.searchsorted(starts, slots, side="right") - 1
        since = cum[slots - base] - cum[starts[k] - base]
        return np.maximum(0.0, full[k] - since)

    def _sold(self, plan: SkuPlan, first: int, last: int, demand) -> tuple[int, np.ndarray]:
        """(base, cum): cum[i] is what the SKU sold in slots base..base+i-1, covering
        first..last. Polls ask for nearly the same stretch each time: the last one (and a
        day ahead) is kept."""
        base, end, cum = self._memo.get(plan.sku, (0, -1, None))
        if cum is None or not (base <= first and last <= end):
            base, end = first, last + int(DAY / self.step)
            sold = self.sales(plan, np.arange(base, end + 1), demand)
            cum = np.concatenate([[0.0], np.cumsum(sold)])
            self._memo[plan.sku] = (base, end, cum)
        return base, cum

    def sales(self, plan: SkuPlan, slots: np.ndarray, demand) -> np.ndarray:
        """Units the SKU sells during each slot (whole, noisy, around share x orders)."""
        mean = plan.share * demand(slots.astype(np.float64) * self.step) * self.step / 60.0
        return self.noise.counts(plan.sid, slots, mean, stream=21)

    def outages(self, sku: str, lo: float, hi: float, demand) -> list[tuple[float, float]]:
        """(start, end) of each run of slots at 0 that starts in [lo, hi): from the first
        slot at 0 to the first slot back above 0 (followed up to 3 days past hi)."""
        slots = np.arange(self._slot(lo) - 1, self._slot(hi + 3 * DAY))
        zero = self.levels(sku, slots, demand) <= 0
        edges = np.diff(np.concatenate([[False], zero, [False]]).astype(np.int8))
        out = []
        for s, e in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)):
            start = float(slots[s] * self.step)
            if s > 0 and lo <= start < hi:  # (a run at the first slot began before lo)
                out.append((start, float((slots[e - 1] + 1) * self.step)))
        return out
