"""The `shop_sim` source plugin: settings, the sim clock, polls, back-fill and labels."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal

import numpy as np

from alertd.base import Source
from alertd.config.schema import Duration
from alertd.model import Sample

from .labels import compute_labels
from .model import ShopModel, resolve_targets
from .rhythm import DAY
from .scenarios import SCENARIOS, STOCK_KINDS, TARGETS, ActiveIncident, IncidentSpec

_MAX_BACKFILL_STEPS = 50_000


def parse_start(text: str) -> float:
    """An ISO date-time (UTC unless it says otherwise) -> epoch seconds."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def monday_before(ts: float) -> float:
    """00:00 UTC of the Monday on or before `ts` (1970-01-05 was a Monday)."""
    return math.floor((ts - 4 * DAY) / (7 * DAY)) * 7 * DAY + 4 * DAY


class ShopSim(Source):
    """A seeded online-shop simulator: seasonal orders, payments, latency, errors, an order
    queue, memory and stock, with injected incidents and their labels.

    Sim time runs `speed` times faster than the daemon's clock from `start`; samples carry
    sim time snapped to `step`. `scenario` picks the built-in incidents and rhythm (`demo`:
    five incidents every 6 h; `week`: the labelled week, see docs/sources.md); `incidents`
    replaces them, repeating every `cycle` (0: once). `labels()` lists every incident of a
    window with the series it shows on.
    """

    type_name = "shop_sim"
    future_tolerance = None  # sim time runs ahead of the clock by design

    @dataclass(frozen=True)
    class Params:
        """Simulator settings; see docs/sources.md ("shop_sim") for the series and scenarios."""

        seed: int = 42
        speed: float = 1.0
        start: str | None = None
        step: Duration = Duration(60)
        backfill: Duration = Duration(7200)
        scenario: Literal["demo", "week"] = "demo"
        cycle: Duration | None = None  # default: the scenario's (demo 6h, week 7d)
        regions: list[str] = ("eu", "us", "apac")
        providers: list[str] = ("stripe", "adyen", "paypal")
        skus: list[str] = ("sku-tshirt", "sku-hoodie", "sku-mug", "sku-cap")
        incidents: list[IncidentSpec] | None = None  # default: the scenario's

        def check(self) -> None:
            if self.speed <= 0 or self.step <= 0:
                raise ValueError("speed and step must be above 0")
            if self.cycle is not None and self.cycle < 0:
                raise ValueError("cycle must not be negative (0: the incidents happen once)")
            try:
                parse_start(self.start) if self.start is not None else None
            except ValueError:
                raise ValueError(f'start "{self.start}" is not an ISO date-time; write it like '
                                 "2024-06-03T08:00:00Z") from None
            for field in ("regions", "providers", "skus"):
                names = getattr(self, field)
                if not names or len(set(names)) != len(names):
                    raise ValueError(f"{field} must list at least one name, each once")
            own = self.incidents is not None
            for i, spec in enumerate(self.specs()):
                problem = spec.problem(lambda field: getattr(self, field))
                if problem:
                    where = f"incidents[{i}]" if own else f'scenario "{self.scenario}" (incident {i + 1})'
                    hint = "" if own else "; give your own incidents or use the default lists"
                    raise ValueError(f"{where}: {problem}{hint}")

        def specs(self) -> tuple[IncidentSpec, ...]:
            """The incidents in force: the given ones or the scenario's."""
            return tuple(self.incidents) if self.incidents is not None else SCENARIOS[self.scenario].incidents

        def cycle_seconds(self) -> float:
            return float(self.cycle) if self.cycle is not None else SCENARIOS[self.scenario].cycle

    @classmethod
    def data_interval(cls, params, every: float | None) -> float | None:
        """Sim seconds between two points: a slot (`step`), or what a poll skips at `speed`."""
        return max(float(params.step), (every or 0.0) * params.speed)

    def __init__(self, params, context):
        super().__init__(params, context)
        p = params
        self.step = float(p.step)
        self._t0 = float(context.now())
        if p.start:
            self.sim_start = parse_start(p.start)
        else:
            self.sim_start = monday_before(self._t0) if p.scenario == "week" else self._t0
        self._restore_anchor()
        self.cycle = p.cycle_seconds()
        self.incidents = [(s, resolve_targets(s, lambda field: getattr(p, field))) for s in p.specs()]
        self.model = ShopModel(seed=p.seed, step=self.step, regions=p.regions, providers=p.providers,
                               skus=p.skus, specs=self.incidents, cycle=self.cycle,
                               sim_start=self.sim_start, rhythm=SCENARIOS[p.scenario].rhythm)
        self.series = self.model.series  # (name, labels, key, noise id), in sample order
        self._announced: set[tuple[str, float]] = set()  # incidents already logged as started
        self._last_slot: int | None = None  # the slot the last poll gave
        if context.log is not None:
            context.log.info("shop_sim_started", source=context.name, speed=p.speed, scenario=p.scenario,
                             sim_start=datetime.fromtimestamp(self.sim_start, timezone.utc).isoformat(),
                             series=len(self.series), incidents=len(self.incidents))

    def _restore_anchor(self) -> None:
        """Keep sim time continuous across restarts by remembering when sim time began."""
        store, p = self.context.store, self.params
        if store is None or not hasattr(store, "get_kv"):
            return
        key = f"shop_sim:{self.context.name}:anchor"
        mine = {"start": p.start, "speed": p.speed, "scenario": p.scenario}
        try:
            saved = store.get_kv(key)
            if saved and all(saved.get(k, "demo" if k == "scenario" else None) == v for k, v in mine.items()):
                self._t0, self.sim_start = float(saved["t0"]), float(saved["sim_start"])
            else:
                store.set_kv(key, {**mine, "t0": self._t0, "sim_start": self.sim_start})
        except Exception as exc:  # a sim without a saved anchor still works
            if self.context.log is not None:
                self.context.log.warning("shop_sim_anchor_failed", error=f"{type(exc).__name__}: {exc}")

    # -- time ------------------------------------------------------------------------------
    def to_sim(self, t: float) -> float:
        """Sim time of a time on the context clock."""
        return self.sim_start + (t - self._t0) * self.params.speed

    def sim_now(self) -> float:
        return self.to_sim(self.context.now())

    def slot_ts(self, sim_ts: float) -> float:
        """Start of the step slot holding `sim_ts`: the timestamp its samples carry."""
        return math.floor(sim_ts / self.step) * self.step

    # -- incidents and labels ----------------------------------------------------------------
    def active_incidents(self, sim_ts: float) -> list[ActiveIncident]:
        """The injected incidents in force at the slot holding `sim_ts` (for a delivery
        problem: from `at` for `duration`)."""
        ts = self.slot_ts(sim_ts)
        return [ActiveIncident(spec.kind, targets, begin, end)
                for spec, targets in self.incidents
                for begin, end in self.model.windows(spec, ts, ts + 1e-6)]

    def labelled_window(self) -> tuple[float, float]:
        """The scenario's labelled window in sim time: the week (or one demo cycle) from sim start."""
        span = SCENARIOS[self.params.scenario].span
        if self.params.incidents is not None:  # a delivery problem may run a SKU out up to 2 days later
            ends = [s.at + s.duration + (2 * DAY if s.kind in STOCK_KINDS else 0) for s, _ in self.incidents]
            span = self.cycle if self.cycle > 0 else max(ends + [3600.0]) + 3600.0
        return self.sim_start, self.sim_start + span

    def labels(self, start: float | None = None, end: float | None = None) -> list[dict]:
        """Every incident starting in [start, end) of sim time (default: `labelled_window`), as
        plain dicts: id, kind, start, end, targets, size, cause, note and effects (series,
        metric, labels, role, start, end). See alertd/default_plugins/sources/shop_sim/labels.py."""
        lo, hi = self.labelled_window()
        lo, hi = lo if start is None else start, hi if end is None else end
        return [label.as_dict() for label in compute_labels(self.model, lo, hi)]

    def describe(self, start: float | None = None, end: float | None = None) -> dict:
        """The labelled window as plain data (what `--labels-out` writes): the scenario, the
        window, the step, every series, the stock plans and the labels."""
        lo, hi = self.labelled_window()
        lo, hi = lo if start is None else start, hi if end is None else end
        return {"source": self.context.name, "scenario": self.params.scenario, "seed": self.params.seed,
                "start": lo, "end": hi, "step": self.step,
                "series": [{"series": key, "metric": name, "labels": dict(labels)}
                           for name, labels, key, _ in self.series],
                "stock": [plan.as_dict() for plan in self.model.stock.plans.values()],
                "labels": self.labels(lo, hi)}

    # -- values ------------------------------------------------------------------------------
    def values(self, slots: np.ndarray) -> list[np.ndarray]:
        """Values of every series (in `self.series` order) at integer step `slots`."""
        return self.model.values(np.asarray(slots, dtype=np.int64))

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
        """One sample per series for the current sim slot (see `next_slot`)."""
        now = self.sim_now()
        if self.context.log is not None:
            active = self.active_incidents(now)
            for inc in active:
                if (inc.kind, inc.start) not in self._announced:
                    self.context.log.info("shop_sim_incident", source=self.context.name, kind=inc.kind,
                                          targets=list(inc.targets), sim_start=inc.start, sim_end=inc.end)
            self._announced = {(inc.kind, inc.start) for inc in active}
        return self.samples_for_slots([self.next_slot(now)])

    def next_slot(self, sim_ts: float) -> int:
        """The slot a poll at sim time `sim_ts` gives: the one holding it, or the one after the
        last poll's if that starts within half a step.

        Polled once a step (the demo: every 2 s at 60x, 2-minute steps), the polls can fall
        next to the slots' edges: one poll a few milliseconds late takes the next slot, the
        next one on time finds the same slot again, and the engine skips its points as
        repeated (a `samples_skipped` warning on every rule). Taking the following slot
        when it is less than half a step away keeps one new point per poll. Polled more often
        than every half step, a poll can still give the last slot again; it never gives an
        earlier one."""
        slot = math.floor(sim_ts / self.step)
        last = self._last_slot
        if last is not None:
            if slot <= last and (last + 1) * self.step <= sim_ts + self.step / 2:
                slot = last + 1
            slot = max(slot, last)
        self._last_slot = slot
        return slot

    async def backfill(self, start: float, end: float) -> list[Sample]:
        """Sim history for the context-clock window [start, end), at `step` resolution.

        The window is mapped to sim time and widened to at least the `backfill` param; it
        stops before the current slot, so the next `collect` brings the first new point. All
        windows together reach back at most `_MAX_BACKFILL_STEPS` slots from now: the daemon
        asks for a rule's whole history in chunks (a week of the daemon's clock is 420 days
        of shop time at 60x), and generating all of it kept the demo from starting for a
        minute, past its first incident.
        """
        now_slot = self.slot_ts(self.sim_now())
        sim_end = min(self.to_sim(end), now_slot)
        sim_start = min(self.to_sim(start), sim_end - self.params.backfill)
        sim_start = max(sim_start, now_slot - _MAX_BACKFILL_STEPS * self.step)
        if sim_start >= sim_end:
            return []
        return self.samples_between(sim_start, sim_end)


__all__ = ["ShopSim", "TARGETS", "parse_start", "monday_before"]
