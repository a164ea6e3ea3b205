"""What can go wrong in the shop, and when: incident kinds, the series each one shows on, and
the two built-in scenarios (`demo` and the labelled `week`).

An `IncidentSpec` is written in a config's `incidents:` list or built in. Kinds and what they
do to the series (see docs/sources.md, "shop_sim"):

| kind | target | what happens |
|---|---|---|
| payment_outage | provider | its success ratio falls to 0.2-0.5; half its orders are lost |
| traffic_spike | region | orders x `factor` (default 3) |
| traffic_drop | region | orders x (1 - `depth`) (default depth 0.5) |
| traffic_collapse | region | orders x 0.1 and 5% more 5xx (an error storm) |
| latency_degradation | - | checkout p95 x `factor` (default 3-5), 3% more 5xx, the order queue grows |
| error_burst | - | `rate` (default 0.08) more 5xx (a bad deploy); that share of orders is lost |
| memory_leak | - | memory creeps up to the limit over `duration`, then the service restarts |
| stock_out | SKU | the delivery before `at` is short: the stock runs out at `at`, refilled at the end |
| restock_late | SKU | the first delivery due at or after `at` comes `duration` late |
| restock_missed | SKU | the first delivery due at or after `at` does not come (the next one does) |

`EFFECTS` says which series each kind shows on, and in which role: *primary* series are the
ones the incident is about (a rule watching them is expected to find it: it counts in that
rule's recall); *secondary* series move because of it (an alert on them during the incident
is explained by it, not a false page, but missing it is no miss).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from alertd.config.schema import Duration

IncidentKind = Literal["payment_outage", "traffic_spike", "traffic_drop", "traffic_collapse",
                       "latency_degradation", "error_burst", "memory_leak", "stock_out",
                       "restock_late", "restock_missed"]

# What an incident's `target` names, by kind (None: the whole shop, no target).
TARGETS = {"payment_outage": "providers", "traffic_spike": "regions", "traffic_drop": "regions",
           "traffic_collapse": "regions", "latency_degradation": None, "error_burst": None,
           "memory_leak": None, "stock_out": "skus", "restock_late": "skus", "restock_missed": "skus"}
# The optional size of each kind: which field, its default (None: seeded), and its range.
SIZES = {"traffic_spike": ("factor", 3.0, (1.1, 20.0)), "traffic_drop": ("depth", 0.5, (0.05, 0.95)),
         "latency_degradation": ("factor", None, (1.1, 20.0)), "error_burst": ("rate", 0.08, (0.001, 0.9))}
STOCK_KINDS = ("stock_out", "restock_late", "restock_missed")

# Series that follow the shop's orders (whatever changes orders touches them a little): the
# load moves latency, errors, the queue and memory; sales move stock.
LOAD_SERIES = ("checkout_latency_p95_ms", "http_5xx_rate", "order_queue_backlog", "memory_used_ratio",
               "stock_level")
# Per kind: (primary, secondary). A name means every series of that metric; "@target" the
# metric's series of the incident's targets.
EFFECTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "payment_outage": (("payment_success_ratio@target",), ("orders_per_minute",) + LOAD_SERIES),
    "traffic_spike": (("orders_per_minute@target",), LOAD_SERIES),
    "traffic_drop": (("orders_per_minute@target",), LOAD_SERIES),
    "traffic_collapse": (("orders_per_minute@target", "http_5xx_rate"), LOAD_SERIES),
    "latency_degradation": (("checkout_latency_p95_ms", "order_queue_backlog"), ("http_5xx_rate",)),
    "error_burst": (("http_5xx_rate",), ("orders_per_minute",) + LOAD_SERIES),
    "memory_leak": (("memory_used_ratio",), ()),
    "stock_out": (("stock_level@target",), ()),
    "restock_late": (("stock_level@target",), ()),
    "restock_missed": (("stock_level@target",), ()),
}


@dataclass(frozen=True)
class IncidentSpec:
    """One injected incident: its kind, start (`at`, offset from sim start), duration, target
    and size (`factor`, `depth` or `rate`, by kind; see the module docstring).

    `target` is a provider, region or SKU by kind; empty means the first one listed and "*"
    means all of them. latency_degradation, error_burst and memory_leak hit the whole shop and
    take no target. For restock_late, `duration` is how late the delivery comes; restock_missed
    ignores it.
    """

    kind: IncidentKind
    at: Duration
    duration: Duration = Duration(900)
    target: str | None = None
    factor: float | None = None
    depth: float | None = None
    rate: float | None = None

    def size(self) -> float | None:
        """The kind's size: the field it uses, or its default (None: seeded per occurrence)."""
        if self.kind not in SIZES:
            return None
        field, default, _ = SIZES[self.kind]
        value = getattr(self, field)
        return default if value is None else value

    def problem(self, names_of) -> str | None:
        """What is wrong with this spec, in one sentence (None: nothing). `names_of(field)`
        gives the configured providers, regions or SKUs."""
        field = TARGETS[self.kind]
        if self.duration <= 0:
            return "duration must be above 0"
        if self.at < 0:
            return "at must not be negative"
        if field is None and self.target not in (None, "*"):
            return f"{self.kind} hits the whole shop; remove its target"
        names = names_of(field) if field else ()
        if field and self.target not in (None, "*", *names):
            return (f'{self.kind} target "{self.target}" is not one of {field} ({", ".join(names)}); '
                    f"fix the target or add it to {field}")
        for name in ("factor", "depth", "rate"):
            value = getattr(self, name)
            if value is None:
                continue
            size = SIZES.get(self.kind)
            if size is None or size[0] != name:
                return f"{self.kind} takes no {name}" + (f"; its size is {size[0]}" if size else "")
            lo, hi = size[2]
            if not lo <= value <= hi:
                return f"{name} of {self.kind} must be between {lo:g} and {hi:g}, got {value:g}"
        return None


@dataclass(frozen=True)
class ActiveIncident:
    """An occurrence of an `IncidentSpec` in sim time, with its targets resolved."""

    kind: str
    targets: tuple[str, ...]
    start: float
    end: float


def occurrences(at: float, duration: float, cycle: float, sim_start: float, lo: float,
                hi: float) -> list[tuple[float, float]]:
    """(start, end) of each occurrence of an incident at `at` after `sim_start`, repeating
    every `cycle` (0: once), that overlaps [lo, hi). None happen before `sim_start`."""
    first = sim_start + at
    if cycle <= 0:
        return [(first, first + duration)] if first < hi and first + duration > lo else []
    k0 = max(0, math.floor((lo - duration - first) / cycle))
    out = []
    k = k0
    while first + k * cycle < hi:
        begin = first + k * cycle
        if begin + duration > lo:
            out.append((begin, begin + duration))
        k += 1
    return out


_M, _H, _D = 60.0, 3600.0, 86400.0


def _spec(kind, at, duration, target=None, **size) -> IncidentSpec:
    return IncidentSpec(kind, Duration(at), Duration(duration), target, **size)


DEMO_INCIDENTS = (
    # Targets left empty pick the first provider / region / SKU, so the default schedule
    # stays valid whatever lists a config gives.
    _spec("payment_outage", 20 * _M, 15 * _M),
    _spec("traffic_spike", 90 * _M, 20 * _M),
    _spec("latency_degradation", 165 * _M, 20 * _M),
    _spec("stock_out", 240 * _M, 45 * _M),
    _spec("traffic_collapse", 315 * _M, 10 * _M, "*"),
)

# The labelled week, from a Monday 00:00 UTC (eu is UTC+1, us UTC-5, apac UTC+8). Monday
# is a normal day. Each line: what it is and where it falls in the day.
WEEK_START = "2025-06-02T00:00:00Z"
WEEK_INCIDENTS = (
    _spec("payment_outage", 1 * _D + 10 * _H + 20 * _M, 25 * _M, "stripe"),  # Tue late morning eu
    _spec("traffic_drop", 1 * _D + 19 * _H + 30 * _M, 30 * _M, "eu", depth=0.6),  # eu evening peak
    _spec("traffic_drop", 2 * _D + 3 * _H, 45 * _M, "eu", depth=0.5),  # eu trough, 04:00 local
    _spec("latency_degradation", 2 * _D + 14 * _H, 25 * _M, factor=4.0),  # Wed afternoon eu
    _spec("restock_late", 2 * _D + 17 * _H, 8 * _H, "sku-tshirt"),  # Wed 18:00 delivery, 8 h late
    _spec("memory_leak", 3 * _D + 9 * _H, 9 * _H),  # Thu: creeps up for 9 h, then a restart
    _spec("traffic_spike", 3 * _D + 12 * _H, 20 * _M, "apac", factor=2.5),  # apac peak, a flash sale
    _spec("traffic_drop", 3 * _D + 16 * _H, 20 * _M, "apac", depth=0.35),  # apac late evening, shallow
    _spec("traffic_drop", 4 * _D + 1 * _H + 30 * _M, 15 * _M, "us", depth=0.7),  # us evening peak, deep
    _spec("restock_missed", 4 * _D + 7 * _H, 15 * _M, "sku-mug"),  # Fri's daily delivery missed
    _spec("error_burst", 4 * _D + 11 * _H, 12 * _M, rate=0.08),  # a bad deploy, Fri midday eu
    _spec("restock_late", 5 * _D + 19 * _H, 7 * _H, "sku-hoodie"),  # Sat evening delivery 7 h late
    _spec("payment_outage", 5 * _D + 21 * _H, 20 * _M, "adyen"),  # Sat evening eu
    _spec("traffic_drop", 6 * _D + 13 * _H, 60 * _M, "eu", depth=0.4),  # Sun afternoon eu, long
)


@dataclass(frozen=True)
class Scenario:
    """A built-in scenario: its incidents, how often they repeat, its rhythm's name, and
    the length of its labelled window."""

    incidents: tuple[IncidentSpec, ...]
    cycle: float
    rhythm: str
    span: float


SCENARIOS = {
    "demo": Scenario(DEMO_INCIDENTS, 6 * _H, "demo", 6 * _H),
    "week": Scenario(WEEK_INCIDENTS, 7 * _D, "week", 7 * _D),
}
