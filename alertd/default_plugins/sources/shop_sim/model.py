"""The shop's values: every series at any step slot, from the rhythm, the noise and the
incidents in force.

`ShopModel.values(slots)` is vectorised over slots and a pure function of the settings and
the slots. Orders, payments, latency and errors depend on the slot alone; the order queue's
backlog and the stock levels carry state (what piled up, what was sold since the last
delivery), which is recomputed from the incident (or delivery) that started it, so they stay
pure functions too.
"""

from __future__ import annotations

import math

import numpy as np

from alertd.model import make_labels, series_key

from .rhythm import DEMO, WEEK, Noise, region_offset, region_peak, stable_id
from .scenarios import SIZES, TARGETS, occurrences
from .stock import Stock, plan_for

RHYTHMS = {"demo": DEMO, "week": WEEK}
QUEUE_IN_FLIGHT_MIN = 0.25  # a normal backlog holds this many minutes of orders
QUEUE_CAPACITY = 1.5  # orders the queue's workers can take per minute, x the sum of evening peaks
MEMORY_LIMIT = 0.99  # where a leak ends: the service is killed and restarts
_DRAIN_MAX = 12 * 3600.0  # a backlog is followed this long after its incident at most


class ShopModel:
    """Every series of the shop for one set of settings (see the module docstring).

    `specs` are (IncidentSpec, targets) pairs; `cycle` repeats them (0: once) from
    `sim_start`; `rhythm` names the normal rhythm ("demo" or "week").
    """

    def __init__(self, *, seed: int, step: float, regions, providers, skus, specs, cycle: float,
                 sim_start: float, rhythm: str):
        self.step, self.cycle, self.sim_start = float(step), float(cycle), float(sim_start)
        self.regions, self.providers, self.skus = tuple(regions), tuple(providers), tuple(skus)
        self.specs = list(specs)
        self.noise = Noise(seed)
        self.rhythm = RHYTHMS[rhythm]
        self.series: list[tuple[str, tuple, str, int]] = []  # name, labels, key, noise id
        for name, label, values in (("orders_per_minute", "region", self.regions),
                                    ("payment_success_ratio", "provider", self.providers),
                                    ("checkout_latency_p95_ms", None, [None]),
                                    ("http_5xx_rate", None, [None]),
                                    ("order_queue_backlog", None, [None]),
                                    ("memory_used_ratio", None, [None]),
                                    ("stock_level", "sku", self.skus)):
            for v in values:
                labels = make_labels({label: v} if label else None)
                key = series_key(name, labels)
                self.series.append((name, labels, key, stable_id(key)))
        self._sid = {key: sid for _, _, key, sid in self.series}
        self._demand_memo: list[tuple[int, int, np.ndarray]] = []  # see demand()
        self._runs: dict[tuple[int, float], tuple[float, np.ndarray]] = {}  # see backlog_runs()
        self.peaks = {r: region_peak(r) for r in self.regions}
        plans = [plan_for(s, self._sid[series_key("stock_level", make_labels({"sku": s}))]) for s in self.skus]
        self.stock = Stock(plans, self.specs, self.cycle, self.sim_start, self.step, self.noise, self.regions,
                           self.rhythm)

    # -- incidents in force -------------------------------------------------------------------
    def windows(self, spec, lo: float, hi: float) -> list[tuple[float, float]]:
        return occurrences(spec.at, spec.duration, self.cycle, self.sim_start, lo, hi)

    def _mask(self, spec, ts: np.ndarray) -> np.ndarray:
        out = np.zeros(ts.shape, dtype=bool)
        if not len(ts):
            return out
        for begin, end in self.windows(spec, float(ts.min()), float(ts.max()) + 1):
            out |= (ts >= begin) & (ts < end)
        return out

    def _hits(self, ts: np.ndarray, kind: str, target: str | None = None):
        """(spec, mask) of the incidents of `kind` (on `target`) in force at ts."""
        for spec, targets in self.specs:
            if spec.kind == kind and (target is None or target in targets):
                yield spec, self._mask(spec, ts)

    def _any(self, ts, kind, target=None) -> np.ndarray:
        out = np.zeros(ts.shape, dtype=bool)
        for _, mask in self._hits(ts, kind, target):
            out |= mask
        return out

    # -- orders -------------------------------------------------------------------------------
    def orders_means(self, ts: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Expected orders per minute by region at ts (incidents applied), and the share of
        payment providers down."""
        down = sum(self._any(ts, "payment_outage", p).astype(float) for p in self.providers) / len(self.providers)
        burst = np.zeros(ts.shape)
        for spec, mask in self._hits(ts, "error_burst"):
            burst += mask * spec.size()
        means = {}
        for r in self.regions:
            local = ts + region_offset(r)
            level = self.rhythm.level(self.noise, stable_id(f"rhythm:{r}"), local)
            m = self.peaks[r] * self.rhythm.profile(local) * level
            m = m * (1 - 0.5 * down) * np.maximum(0.0, 1 - burst)
            for spec, mask in self._hits(ts, "traffic_spike", r):
                m = m * np.where(mask, spec.size(), 1.0)
            for spec, mask in self._hits(ts, "traffic_drop", r):
                m = m * np.where(mask, 1.0 - spec.size(), 1.0)
            means[r] = m * np.where(self._any(ts, "traffic_collapse", r), 0.1, 1.0)
        return means, down

    def demand(self, ts: np.ndarray) -> np.ndarray:
        """Expected orders per minute of the whole shop at ts (slot starts). Stock and the
        order queue ask for the same stretches again and again: the last few computed (each
        with a day ahead) are kept."""
        slots = np.round(np.asarray(ts, dtype=np.float64) / self.step).astype(np.int64)
        if not len(slots):
            return np.empty(0)
        lo, hi = int(slots.min()), int(slots.max())
        for k, (first, last, values) in enumerate(self._demand_memo):
            if first <= lo and hi <= last:
                self._demand_memo.insert(0, self._demand_memo.pop(k))
                return values[slots - first]
        first, last = lo, hi + int(86400 / self.step)
        values = sum(self.orders_means(np.arange(first, last + 1) * self.step)[0].values())
        self._demand_memo = [(first, last, values), *self._demand_memo[:3]]  # stock and the queue ask apart
        return values[slots - first]

    # -- latency and the order queue -------------------------------------------------------------
    def _latency_factor(self, ts: np.ndarray, slots: np.ndarray) -> np.ndarray:
        """How many times slower checkout is at ts (1 outside latency_degradation)."""
        out = np.ones(ts.shape)
        u = self.noise.uniform(self._sid["checkout_latency_p95_ms"], slots, 3)
        for spec, mask in self._hits(ts, "latency_degradation"):
            size = spec.size()
            f = 3.0 + 2.0 * u if size is None else size * (0.95 + 0.1 * u)
            out = np.where(mask, f, out)
        return out

    def backlog_runs(self, lo: float, hi: float) -> list[tuple[float, float, float, np.ndarray]]:
        """Each latency_degradation overlapping [lo, hi) with its backlog: (start, end, drained
        at, excess orders per slot from its start). Orders arrive as usual; while checkout is
        F times slower the workers take 1/F of them, afterwards QUEUE_CAPACITY a minute."""
        out = []
        for k, (spec, _) in enumerate(self.specs):
            if spec.kind != "latency_degradation":
                continue
            for begin, end in self.windows(spec, lo - _DRAIN_MAX, hi):
                if (k, begin) not in self._runs:
                    if len(self._runs) > 64:
                        self._runs.clear()
                    self._runs[(k, begin)] = self._backlog(begin, end)
                drained, excess = self._runs[(k, begin)]
                if drained > lo:
                    out.append((begin, end, drained, excess))
        return out

    def _backlog(self, begin: float, end: float) -> tuple[float, np.ndarray]:
        """(drained at, excess orders per slot from `begin`) of one latency degradation."""
        capacity = QUEUE_CAPACITY * sum(self.peaks.values()) * self.step / 60.0
        slots = np.arange(math.ceil(begin / self.step - 1e-9), math.ceil((end + _DRAIN_MAX) / self.step))
        ts = slots * self.step
        arrive = self.demand(ts) * self.step / 60.0
        during = ts < end
        served = np.where(during, arrive / self._latency_factor(ts, slots), capacity)
        level = np.cumsum(arrive - served)
        empty = np.flatnonzero(~during & (level <= 0))
        stop = int(empty[0]) if len(empty) else len(level)
        excess = np.where(np.arange(len(level)) < stop, np.maximum(level, 0.0), 0.0)[:stop + 1]
        drained = float(slots[stop] * self.step) if stop < len(slots) else float(ts[-1])
        return drained, np.round(excess)

    def _backlog_excess(self, slots: np.ndarray) -> np.ndarray:
        out = np.zeros(slots.shape)
        ts = slots * self.step
        for begin, _, _, excess in self.backlog_runs(float(ts.min()), float(ts.max()) + 1):
            first = math.ceil(begin / self.step - 1e-9)
            i = slots - first
            inside = (i >= 0) & (i < len(excess))
            out[inside] += excess[i[inside]]
        return out

    # -- values ---------------------------------------------------------------------------------
    def values(self, slots: np.ndarray) -> list[np.ndarray]:
        """Values of every series (in `self.series` order) at integer step `slots`."""
        slots = np.asarray(slots, dtype=np.int64)
        ts = slots.astype(np.float64) * self.step
        means, down = self.orders_means(ts)
        load = sum(means.values()) / sum(self.peaks.values())
        slow = self._latency_factor(ts, slots)
        degraded = self._any(ts, "latency_degradation")
        out = []
        for name, labels, _, sid in self.series:
            z, u = self.noise.normal(sid, slots), self.noise.uniform(sid, slots, 3)
            target = labels[0][1] if labels else None
            if name == "orders_per_minute":
                m = means[target]
                v = np.maximum(0.0, np.round(m + np.sqrt(m) * z))
            elif name == "payment_success_ratio":
                base = 0.975 + 0.015 * ((sid >> 20) % 1000) / 1000.0
                v = np.clip(base + 0.003 * z, 0.0, 0.999)
                v = np.where(self._any(ts, "payment_outage", target), 0.2 + 0.3 * u, v)
            elif name == "checkout_latency_p95_ms":
                v = 330.0 + 60.0 * np.minimum(load, 1.0) + 60.0 * np.maximum(load - 1.0, 0.0) + 12.0 * z
                v = v * slow
            elif name == "http_5xx_rate":
                v = 0.0015 + 0.001 * np.minimum(load, 1.0) + 0.0005 * u
                v = v + 0.04 * down + 0.03 * degraded
                v = v + 0.01 * self._any(ts, "traffic_spike") + 0.05 * self._any(ts, "traffic_collapse")
                for spec, mask in self._hits(ts, "error_burst"):
                    v = v + spec.size() * mask
            elif name == "order_queue_backlog":
                m = sum(means.values()) * QUEUE_IN_FLIGHT_MIN
                v = np.maximum(0.0, np.round(m + np.sqrt(m) * z)) + self._backlog_excess(slots)
            elif name == "memory_used_ratio":
                gc = 0.03 * (((ts + sid % 1200) % 1200.0) / 1200.0)  # a 20-minute collection cycle
                v = 0.42 + 0.18 * np.minimum(load, 1.2) + gc + 0.005 * z
                for spec, _ in self._hits(ts, "memory_leak"):
                    for begin, end in self.windows(spec, float(ts.min()), float(ts.max()) + 1):
                        inside = (ts >= begin) & (ts < end)
                        frac = np.clip((ts - begin) / (end - begin), 0.0, 1.0)
                        v = np.where(inside, v + frac * (MEMORY_LIMIT - v), v)
                v = np.clip(v, 0.0, 1.0)
            else:  # stock_level
                v = self.stock.levels(target, slots, self.demand)
            out.append(v)
        return out


def resolve_targets(spec, names_of) -> tuple[str, ...]:
    """The providers, regions or SKUs an incident hits (empty target: the first one)."""
    field = TARGETS[spec.kind]
    if field is None:
        return ()
    names = tuple(names_of(field))
    return names if spec.target == "*" else (spec.target,) if spec.target else names[:1]


__all__ = ["ShopModel", "resolve_targets", "SIZES"]
