"""Labels: every injected incident of a time window, with the series it shows on and when,
as plain data for backtests (`ShopSim.labels()`, `alertd backtest --sim-week`).

A label is one incident: its kind, start and end (sim time, epoch seconds), targets, size,
a note for people, and its *effects*: one per series it shows on, each with its own window
and role (see alertd/default_plugins/sources/shop_sim/scenarios.py, `EFFECTS`). Most effects
share the incident's window; the order queue's lasts until its backlog has drained, and a
stock-out's runs from the slot its stock reaches 0 to the delivery that refills it (read off
the simulated levels, so a label always agrees with the values). Every stock-out in the
window is labelled, with its cause (a late, missed or short delivery).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone

from .rhythm import REGION_TZ
from .scenarios import EFFECTS, SIZES, STOCK_KINDS


@dataclass(frozen=True)
class Effect:
    """Where and when an incident shows: one series (key, metric, labels), its role
    ("primary": the incident is about it; "secondary": it moves because of it) and window."""

    series: str
    metric: str
    labels: dict
    role: str
    start: float
    end: float


@dataclass(frozen=True)
class Label:
    """One labelled incident (see the module docstring). `facts` holds numbers about it: its
    factor, depth or rate; for a latency degradation the backlog's peak and when it drained;
    for a stock-out the delivery behind it (`delivery_due`, `late_by_s` or `missed`).
    `cause` says, for stock-outs, why it happened."""

    id: str
    kind: str
    start: float
    end: float
    targets: tuple[str, ...]
    note: str
    effects: tuple[Effect, ...]
    facts: dict = field(default_factory=dict)
    cause: str = ""

    def as_dict(self) -> dict:
        out = asdict(self)
        out["targets"] = list(self.targets)
        out["start_utc"], out["end_utc"] = _iso(self.start), _iso(self.end)
        return out


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _local(ts: float, region: str | None) -> str:
    hours = REGION_TZ.get(region, 0) if region else 0
    moment = datetime.fromtimestamp(ts, timezone.utc) + timedelta(hours=hours)
    return moment.strftime("%a %H:%M") + (f" {region} time" if region else " UTC")


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def effect_series(model, kind: str, targets) -> list[tuple[tuple, str]]:
    """((name, labels, key), role) of every series the kind shows on, primary first."""
    out, seen = [], set()
    for role, entries in zip(("primary", "secondary"), EFFECTS[kind]):
        for entry in entries:
            metric, _, on_target = entry.partition("@")
            for name, labels, key, _ in model.series:
                if name != metric or key in seen:
                    continue
                if on_target and not (labels and labels[0][1] in targets):
                    continue
                seen.add(key)
                out.append(((name, labels, key), role))
    return out


def _note(kind: str, targets, size, start: float, end: float) -> str:
    where = targets[0] if len(targets) == 1 and targets[0] in REGION_TZ else None
    what = {"payment_outage": "payments fail at {t}",
            "traffic_spike": "{t} orders x{size:g}",
            "traffic_drop": "{t} orders -{pct:.0f}%",
            "traffic_collapse": "{t} orders -90% with an error storm",
            "latency_degradation": "checkout {size_text}slower, the order queue backs up",
            "error_burst": "a bad deploy: {pct:.0f}% more 5xx",
            "memory_leak": "memory creeps up to the limit, then a restart"}[kind]
    size_text = f"x{size:g} " if size else ""
    text = what.format(t=", ".join(targets), size=size or 0, pct=100 * (size or 0), size_text=size_text)
    return f"{text}, {_minutes(end - start)} from {_local(start, where)}"


def compute_labels(model, lo: float, hi: float) -> list[Label]:
    """The labels of every incident that starts in [lo, hi), in time order."""
    found = []  # (start, kind, end, targets, facts, cause, note, effects as (series, role, start, end))
    runs = {begin: (drained, float(excess.max())) for begin, _, drained, excess in model.backlog_runs(lo, hi)}
    for spec, targets in model.specs:
        if spec.kind in STOCK_KINDS:
            continue
        size_key = SIZES[spec.kind][0] if spec.kind in SIZES else None
        for begin, end in model.windows(spec, lo, hi):
            if not lo <= begin < hi:
                continue
            facts = {size_key: spec.size()} if size_key and spec.size() is not None else {}
            drained = end
            if spec.kind == "latency_degradation" and begin in runs:
                drained, peak = runs[begin]
                facts.update(backlog_peak=peak, backlog_drained_at=drained)
            effects = [(s, role, begin, drained if s[0] == "order_queue_backlog" else end)
                       for s, role in effect_series(model, spec.kind, targets)]
            note = _note(spec.kind, targets, spec.size(), begin, end)
            found.append((begin, spec.kind, end, targets, facts, "", note, effects))
    for sku in model.skus:
        for start, end in model.stock.outages(sku, lo, hi, model.demand):
            cause, facts = _stock_cause(model, sku, start)
            effects = [(s, role, start, end) for s, role in effect_series(model, "stock_out", (sku,))]
            note = f"{sku} out of stock for {_minutes(end - start)} from {_local(start, None)}: {cause}"
            found.append((start, "stock_out", end, (sku,), facts, cause, note, effects))
    found.sort(key=lambda f: (f[0], f[1]))
    return [Label(f"{n:02d}-{kind}", kind, start, end, tuple(targets), note,
                  tuple(Effect(key, name, dict(lab), role, a, b) for (name, lab, key), role, a, b in effects),
                  facts, cause)
            for n, (start, kind, end, targets, facts, cause, note, effects) in enumerate(found, start=1)]


def _stock_cause(model, sku: str, start: float) -> tuple[str, dict]:
    """Why the SKU ran out at `start` (the latest delivery problem before it, or sales), and
    its facts."""
    best = None
    for spec, targets in model.specs:
        if spec.kind not in STOCK_KINDS or sku not in targets:
            continue
        for begin, _ in model.windows(spec, start - 3 * 86400, start + model.step):
            if begin <= start + model.step and (best is None or begin > best[0]):
                best = (begin, spec)
    if best is None:
        return "sales outran the stock", {}
    begin, spec = best
    if spec.kind == "stock_out":
        return "the last delivery was short", {"short_delivery": True}
    plan = model.stock.plans[sku]
    due = math.ceil((begin - plan.phase) / plan.period) * plan.period + plan.phase
    if spec.kind == "restock_late":
        return (f"the {_local(due, None)} delivery came {spec.duration / 3600:g} h late",
                {"delivery_due": due, "late_by_s": float(spec.duration)})
    return f"the {_local(due, None)} delivery did not come", {"delivery_due": due, "missed": True}
