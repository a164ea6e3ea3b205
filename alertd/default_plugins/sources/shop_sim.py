"""The `shop_sim` source: a deterministic online shop with seasonality and injected incidents.

Sim time runs `speed` times faster than the daemon's clock from `start`. The sim has a
resolution of `step`: every sample's timestamp is the start of a step slot, and its value is a
pure function of (seed, series, slot) and the incident schedule, so re-polling, back-filling
and restarting all see the same numbers. Noise comes from a counter-based hash (splitmix64),
vectorised over slots, not from a stateful random generator.

Series: `orders_per_minute{region}`, `payment_success_ratio{provider}`,
`checkout_latency_p95_ms`, `http_5xx_rate` (share of responses) and `stock_level{sku}`.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal

import numpy as np

from alertd import hookimpl
from alertd.base import Source
from alertd.config.schema import Duration
from alertd.model import Sample, make_labels, series_key

IncidentKind = Literal["payment_outage", "traffic_spike", "latency_degradation", "stock_out",
                       "traffic_collapse"]

# What an incident's `target` names, by kind (None: the whole shop, no target).
_TARGETS = {"payment_outage": "providers", "traffic_spike": "regions", "traffic_collapse": "regions",
            "stock_out": "skus", "latency_degradation": None}
_REGION_TZ = {"eu": 1, "us": -5, "apac": 8}  # hours from UTC, for the daily rhythm
_REGION_PEAK = {"eu": 140.0, "us": 180.0, "apac": 90.0}  # evening orders per minute
_WEEKDAY = np.array([0.95, 0.97, 1.0, 1.0, 1.05, 1.15, 1.2])  # Mon..Sun
_MAX_BACKFILL_STEPS = 50_000
_M64 = (1 << 64) - 1


@dataclass(frozen=True)
class IncidentSpec:
    """One injected incident: its kind, start (`at`, offset from sim start), duration, target.

    `target` is a provider (payment_outage), region (traffic_spike, traffic_collapse) or SKU
    (stock_out); empty means the first one listed and "*" means all of them.
    latency_degradation hits the whole checkout and takes no target.
    """

    kind: IncidentKind
    at: Duration
    duration: Duration = Duration(900)
    target: str | None = None


@dataclass(frozen=True)
class ActiveIncident:
    """An occurrence of an `IncidentSpec` in sim time, with its targets resolved."""

    kind: str
    targets: tuple[str, ...]
    start: float
    end: float


DEFAULT_INCIDENTS = (
    # Targets left empty pick the first provider / region / SKU, so the default schedule
    # stays valid whatever lists a config gives.
    IncidentSpec("payment_outage", Duration(20 * 60), Duration(15 * 60)),
    IncidentSpec("traffic_spike", Duration(90 * 60), Duration(20 * 60)),
    IncidentSpec("latency_degradation", Duration(165 * 60), Duration(20 * 60)),
    IncidentSpec("stock_out", Duration(240 * 60), Duration(45 * 60)),
    IncidentSpec("traffic_collapse", Duration(315 * 60), Duration(10 * 60), "*"),
)


def _parse_start(text: str) -> float:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on uint64 arrays (wrapping arithmetic)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _stable_id(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def _bump(hour: np.ndarray, centre: float, width: float) -> np.ndarray:
    d = np.abs(hour - centre)
    return np.exp(-0.5 * (np.minimum(d, 24.0 - d) / width) ** 2)


def daily_profile(local_ts: np.ndarray) -> np.ndarray:
    """Share of peak traffic at local times: quiet nights, lunch bump, evening peak, weekends."""
    hour = (local_ts % 86400.0) / 3600.0
    weekday = ((local_ts // 86400.0).astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
    p = 0.1 + 0.35 * _bump(hour, 11, 3) + 0.2 * _bump(hour, 13, 1.2) + 0.85 * _bump(hour, 20.5, 2.2)
    p = p + np.where(weekday >= 5, 0.2 * _bump(hour, 15, 3), 0.0)
    return p * _WEEKDAY[weekday]


class ShopSim(Source):
    """A seeded online-shop simulator: seasonal orders, payments, latency, errors and stock.

    Incidents from `incidents` repeat every `cycle` of sim time (0: once). Timestamps are sim
    time snapped to `step`; `backfill` gives at least `backfill` of sim history.
    """

    type_name = "shop_sim"

    @dataclass(frozen=True)
    class Params:
        """Simulator settings; see the module docstring for the series."""

        seed: int = 42
        speed: float = 1.0
        start: str | None = None
        step: Duration = Duration(60)
        backfill: Duration = Duration(7200)
        cycle: Duration = Duration(6 * 3600)
        regions: list[str] = ("eu", "us", "apac")
        providers: list[str] = ("stripe", "adyen", "paypal")
        skus: list[str] = ("sku-tshirt", "sku-hoodie", "sku-mug", "sku-cap")
        incidents: list[IncidentSpec] = DEFAULT_INCIDENTS

        def check(self) -> None:
            if self.speed <= 0 or self.step <= 0:
                raise ValueError("speed and step must be above 0")
            try:
                _parse_start(self.start) if self.start is not None else None
            except ValueError:
                raise ValueError(f'start "{self.start}" is not an ISO date-time; write it like '
                                 "2024-06-03T08:00:00Z") from None
            for field in ("regions", "providers", "skus"):
                names = getattr(self, field)
                if not names or len(set(names)) != len(names):
                    raise ValueError(f"{field} must list at least one name, each once")
            for i, spec in enumerate(self.incidents):
                field, names = _TARGETS[spec.kind], getattr(self, _TARGETS[spec.kind] or "skus")
                if spec.duration <= 0:
                    raise ValueError(f"incidents[{i}]: duration must be above 0")
                if field is None and spec.target not in (None, "*"):
                    raise ValueError(f"incidents[{i}]: {spec.kind} hits the whole checkout; "
                                     "remove its target")
                if field and spec.target not in (None, "*", *names):
                    raise ValueError(f'incidents[{i}]: {spec.kind} target "{spec.target}" is not one of '
                                     f"{field} ({', '.join(names)}); fix the target or add it to {field}")

    def __init__(self, params, context):
        super().__init__(params, context)
        p = params
        self.step = float(p.step)
        self._seed = np.uint64(p.seed & _M64)
        self._t0 = float(context.now())
        self.sim_start = _parse_start(p.start) if p.start else self._t0
        self._restore_anchor()
        self.series: list[tuple[str, tuple, str, int]] = []  # name, labels, key, noise id
        for name, label, values in (("orders_per_minute", "region", p.regions),
                                    ("payment_success_ratio", "provider", p.providers),
                                    ("checkout_latency_p95_ms", None, [None]),
                                    ("http_5xx_rate", None, [None]),
                                    ("stock_level", "sku", p.skus)):
            for v in values:
                labels = make_labels({label: v} if label else None)
                key = series_key(name, labels)
                self.series.append((name, labels, key, _stable_id(key)))
        self._specs = [(s, self._resolve(s)) for s in p.incidents]
        self._announced: set[tuple[str, float]] = set()  # incidents already logged as started
        if context.log is not None:
            context.log.info("shop_sim_started", source=context.name, speed=p.speed,
                             sim_start=datetime.fromtimestamp(self.sim_start, timezone.utc).isoformat(),
                             series=len(self.series), incidents=len(self._specs))

    def _restore_anchor(self) -> None:
        """Keep sim time continuous across restarts by remembering when sim time began."""
        store, p = self.context.store, self.params
        if store is None or not hasattr(store, "get_kv"):
            return
        key, mine = f"shop_sim:{self.context.name}:anchor", {"start": p.start, "speed": p.speed}
        try:
            saved = store.get_kv(key)
            if saved and all(saved.get(k) == v for k, v in mine.items()):
                self._t0, self.sim_start = float(saved["t0"]), float(saved["sim_start"])
            else:
                store.set_kv(key, {**mine, "t0": self._t0, "sim_start": self.sim_start})
        except Exception as exc:  # a sim without a saved anchor still works
            if self.context.log is not None:
                self.context.log.warning("shop_sim_anchor_failed", error=f"{type(exc).__name__}: {exc}")

    def _resolve(self, spec: IncidentSpec) -> tuple[str, ...]:
        field = _TARGETS[spec.kind]
        if field is None:
            return ()
        names = tuple(getattr(self.params, field))
        return names if spec.target == "*" else (spec.target,) if spec.target else names[:1]

    # -- time ------------------------------------------------------------------------------
    def to_sim(self, t: float) -> float:
        """Sim time of a time on the context clock."""
        return self.sim_start + (t - self._t0) * self.params.speed

    def sim_now(self) -> float:
        return self.to_sim(self.context.now())

    def slot_ts(self, sim_ts: float) -> float:
        """Start of the step slot holding `sim_ts`: the timestamp its samples carry."""
        return math.floor(sim_ts / self.step) * self.step

    # -- incidents ---------------------------------------------------------------------------
    def _active(self, spec: IncidentSpec, ts: np.ndarray) -> np.ndarray:
        off = ts - self.sim_start - spec.at
        if self.params.cycle > 0:
            off = np.where(off >= 0, off - np.floor(off / self.params.cycle) * self.params.cycle, off)
        return (off >= 0) & (off < spec.duration)

    def active_incidents(self, sim_ts: float) -> list[ActiveIncident]:
        """The injected incidents affecting the samples of the slot holding `sim_ts`."""
        ts = self.slot_ts(sim_ts)
        out = []
        for spec, targets in self._specs:
            if self._active(spec, np.array([ts]))[0]:
                begin = self.sim_start + spec.at
                if self.params.cycle > 0:
                    begin += math.floor((ts - begin) / self.params.cycle) * self.params.cycle
                out.append(ActiveIncident(spec.kind, targets, begin, begin + spec.duration))
        return out

    # -- values ------------------------------------------------------------------------------
    def _uniform(self, sid: int, slots: np.ndarray, stream: int = 0) -> np.ndarray:
        h = _mix(np.full(slots.shape, self._seed, dtype=np.uint64) ^ np.uint64(sid))
        h = _mix(h ^ slots.astype(np.uint64))
        h = _mix(h ^ np.uint64(stream + 1))
        return (h >> np.uint64(11)).astype(np.float64) * 2.0 ** -53

    def _normal(self, sid: int, slots: np.ndarray) -> np.ndarray:
        u1, u2 = self._uniform(sid, slots, 1), self._uniform(sid, slots, 2)
        return np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * np.pi * u2)

    def values(self, slots: np.ndarray) -> list[np.ndarray]:
        """Values of every series (in `self.series` order) at integer step `slots`."""
        p, ts = self.params, slots.astype(np.float64) * self.step
        masks = [(spec.kind, set(t), self._active(spec, ts)) for spec, t in self._specs]

        def hit(kind: str, name: str | None = None) -> np.ndarray:
            out = np.zeros(ts.shape, dtype=bool)
            for k, targets, mask in masks:
                if k == kind and (name is None or name in targets):
                    out |= mask
            return out

        down = sum(hit("payment_outage", x).astype(float) for x in p.providers) / len(p.providers)
        means, peaks = {}, 0.0
        for r in p.regions:
            peak = _REGION_PEAK.get(r, 60.0 + _stable_id(r) % 100)
            m = peak * daily_profile(ts + 3600.0 * _REGION_TZ.get(r, 0)) * (1 - 0.5 * down)
            means[r] = m * np.where(hit("traffic_spike", r), 3.0, 1.0) * np.where(
                hit("traffic_collapse", r), 0.1, 1.0)
            peaks += peak
        load = sum(means.values()) / peaks
        out = []
        for name, labels, _, sid in self.series:
            z, u = self._normal(sid, slots), self._uniform(sid, slots, 3)
            target = labels[0][1] if labels else None
            if name == "orders_per_minute":
                m = means[target]
                v = np.maximum(0.0, np.round(m + np.sqrt(m) * z))
            elif name == "payment_success_ratio":
                base = 0.975 + 0.015 * ((sid >> 20) % 1000) / 1000.0
                v = np.clip(base + 0.003 * z, 0.0, 0.999)
                v = np.where(hit("payment_outage", target), 0.2 + 0.3 * u, v)
            elif name == "checkout_latency_p95_ms":
                v = 330.0 + 60.0 * np.minimum(load, 1.0) + 60.0 * np.maximum(load - 1.0, 0.0) + 12.0 * z
                v = np.where(hit("latency_degradation"), v * (3.0 + 2.0 * u), v)
            elif name == "http_5xx_rate":
                v = 0.0015 + 0.001 * np.minimum(load, 1.0) + 0.0005 * u
                v = v + 0.04 * down + 0.03 * hit("latency_degradation")
                v = v + 0.01 * hit("traffic_spike") + 0.05 * hit("traffic_collapse")
            else:  # stock_level: sawtooth depletion, restocked every few hours
                cap = 200.0 + sid % 400
                period = 3600.0 * (4, 6, 8, 12)[(sid >> 12) % 4]
                frac = ((ts + (sid >> 24) % int(period)) % period) / period
                v = np.maximum(0.0, np.round(cap * (1.0 - 0.85 * frac) + 1.5 * z))
                v = np.where(hit("stock_out", target), 0.0, v)
            out.append(v)
        return out

    def samples_for_slots(self, slots) -> list[Sample]:
        """Samples of every series at the given integer step slots, in time order."""
        slots = np.asarray(slots, dtype=np.int64)
        if not len(slots):
            return []
        cols = self.values(slots)
        ts = slots.astype(np.float64) * self.step
        return [Sample(name, labels, float(ts[j]), float(col[j]))
                for j in range(len(slots)) for (name, labels, _, _), col in zip(self.series, cols)]

    def samples_at(self, sim_ts: float) -> list[Sample]:
        """One sample per series for the slot holding sim time `sim_ts`."""
        return self.samples_for_slots([math.floor(sim_ts / self.step)])

    def samples_between(self, start: float, end: float) -> list[Sample]:
        """Samples at every slot start in the sim-time window [start, end)."""
        return self.samples_for_slots(np.arange(math.ceil(start / self.step), math.ceil(end / self.step)))

    def history(self, n_steps: int) -> list[Sample]:
        """The `n_steps` slots before the current one (what a back-fill would return)."""
        now = math.floor(self.sim_now() / self.step)
        return self.samples_for_slots(np.arange(now - n_steps, now))

    # -- Source ------------------------------------------------------------------------------
    async def collect(self) -> list[Sample]:
        """One sample per series for the current sim slot."""
        now = self.sim_now()
        if self.context.log is not None:
            active = self.active_incidents(now)
            for inc in active:
                if (inc.kind, inc.start) not in self._announced:
                    self.context.log.info("shop_sim_incident", source=self.context.name, kind=inc.kind,
                                          targets=list(inc.targets), sim_start=inc.start, sim_end=inc.end)
            self._announced = {(inc.kind, inc.start) for inc in active}
        return self.samples_at(now)

    async def backfill(self, start: float, end: float) -> list[Sample]:
        """Sim history for the context-clock window [start, end), at `step` resolution.

        The window is mapped to sim time and widened to at least the `backfill` param; it
        stops before the current slot, so the next `collect` brings the first new point.
        """
        now_slot = self.slot_ts(self.sim_now())
        sim_end = min(self.to_sim(end), now_slot)
        sim_start = min(self.to_sim(start), sim_end - self.params.backfill)
        sim_start = max(sim_start, sim_end - _MAX_BACKFILL_STEPS * self.step)
        return self.samples_between(sim_start, sim_end)


@hookimpl
def register_sources(register):
    register(ShopSim)
