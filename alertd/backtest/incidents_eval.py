"""Judging rules by incidents: which labelled incidents each rule found, how fast, and which
of its pages matched nothing.

Plain data in, plain data out, so a test can hand-build both sides: `labels` as the shop
simulator writes them (alertd/default_plugins/sources/shop_sim/labels.py: each label names
the series it shows on, each with a window and a role) and the `Page`s a replay fired.

The rules of the game:

- **Which labels a rule answers for.** A rule is responsible for a label when the label has
  a *primary* effect on a series the rule selects (its `series:` selector matched against
  the effect's metric and labels). Those labels make its recall. A *secondary* effect (a
  series that moves because of the incident: orders during a payment outage) makes a page
  on that series *explained*: not a false page, but not finding it is no miss.
- **A page matches an effect** when it is on the effect's series and *fires* inside the
  effect's window, widened by `lead` before its start and `tolerance` after its end (a
  detector that judges a point only after it has seen a few more may fire just after an
  incident ends). A page that was already firing when the incident began does not match it:
  it fired for something else (an evening peak, say) and stays a false page, and the
  incident counts as missed unless another page fires for it. `lead` is 0 by default; an
  early-warning rule gets its horizon (`leads` per rule), so a warning before the incident
  starts counts as found. An early warning (`warnings`: rules whose pages are about the
  future) also matches an effect it is still firing at the start of, however early it
  fired: a warning that was open when the stock ran out did its job (its incident resolves
  there, "crossed").
- **Found**: a label with at least one matching page on a primary series of the rule. Its
  *time to fire* is the earliest matching page's fired time minus the effect's start
  (negative with `lead`: warned that long before the start).
- **Pages**: every incident the rule fired (every `firing` transition: a re-fire after a
  resolve is another page). *True*: it matches a primary effect; *explained*: only a
  secondary one; *false*: none. Precision = (true + explained) / pages; recall = found /
  labels. Undefined (None) when there is nothing to divide.
- **Overall** adds the rules' counts (micro average) and lists the labels no rule answers for.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field

from ..matchers import Selector


@dataclass(frozen=True)
class Page:
    """One incident a rule fired: on which series, when it fired and resolved (None: still
    firing when the replay ended), the value and reason it fired with."""

    rule: str
    series: str
    fired_at: float
    resolved_at: float | None = None
    value: float | None = None
    reason: str = ""

    def fired_in(self, start: float, end: float) -> bool:
        return start <= self.fired_at <= end

    def open_at(self, when: float) -> bool:
        """Whether the page was firing at `when` (fired before, resolved at or after it)."""
        return self.fired_at <= when and (self.resolved_at is None or self.resolved_at >= when)


@dataclass(frozen=True)
class LabelOutcome:
    """A label a rule answers for: found or not, after how long, and by how many pages."""

    label: str
    kind: str
    start: float
    end: float
    series: tuple[str, ...]  # the rule's primary series of this label
    found: bool
    time_to_fire: float | None  # seconds from the effect's start to the first matching page
    pages: int  # pages of the rule that match this label (primary effects)
    note: str = ""


@dataclass(frozen=True)
class FalsePage:
    """A page that matches no label, with the nearest label on its series (if any) for context."""

    page: Page
    nearest: str | None = None  # "02-traffic_drop ended 25 min before"


@dataclass
class RuleReport:
    """One rule's incident-level figures."""

    rule: str
    series: list[str]  # the labelled window's series the rule selects
    labels: list[LabelOutcome] = field(default_factory=list)
    pages: int = 0
    true_pages: int = 0
    explained_pages: int = 0
    false_pages: list[FalsePage] = field(default_factory=list)

    @property
    def found(self) -> int:
        return sum(1 for o in self.labels if o.found)

    @property
    def precision(self) -> float | None:
        return (self.true_pages + self.explained_pages) / self.pages if self.pages else None

    @property
    def recall(self) -> float | None:
        return self.found / len(self.labels) if self.labels else None

    @property
    def times_to_fire(self) -> list[float]:
        return [o.time_to_fire for o in self.labels if o.found and o.time_to_fire is not None]

    def as_dict(self) -> dict:
        times = self.times_to_fire
        return {"rule": self.rule, "series": self.series, "labels": len(self.labels), "found": self.found,
                "missed": len(self.labels) - self.found, "pages": self.pages, "true_pages": self.true_pages,
                "explained_pages": self.explained_pages, "false_pages": len(self.false_pages),
                "precision": self.precision, "recall": self.recall,
                "time_to_fire_median": statistics.median(times) if times else None,
                "time_to_fire_max": max(times) if times else None,
                "outcomes": [asdict(o) for o in self.labels],
                "false_page_list": [{**asdict(f.page), "nearest": f.nearest} for f in self.false_pages]}


@dataclass
class Evaluation:
    """Every rule's report, the totals, and the labels no rule answers for."""

    rules: list[RuleReport]
    unwatched: list[dict]  # labels without a responsible rule
    tolerance: float
    lead: float
    leads: dict[str, float] = field(default_factory=dict)  # per rule, where not `lead`
    warnings: frozenset = frozenset()  # early-warning rules (pages open at a start match it)

    def totals(self) -> dict:
        labels = sum(len(r.labels) for r in self.rules)
        found = sum(r.found for r in self.rules)
        pages = sum(r.pages for r in self.rules)
        false = sum(len(r.false_pages) for r in self.rules)
        times = [t for r in self.rules for t in r.times_to_fire]
        return {"labels": labels, "found": found, "missed": labels - found, "pages": pages,
                "true_pages": sum(r.true_pages for r in self.rules),
                "explained_pages": sum(r.explained_pages for r in self.rules), "false_pages": false,
                "precision": (pages - false) / pages if pages else None,
                "recall": found / labels if labels else None,
                "time_to_fire_median": statistics.median(times) if times else None,
                "time_to_fire_max": max(times) if times else None}

    def as_dict(self) -> dict:
        return {"tolerance_s": self.tolerance, "lead_s": self.lead, "leads_s": dict(self.leads),
                "warning_rules": sorted(self.warnings),
                "rules": [r.as_dict() for r in self.rules],
                "overall": self.totals(), "unwatched_labels": [lab["id"] for lab in self.unwatched]}


def selects(selector: Selector, effect: dict) -> bool:
    """Whether a rule's selector picks the effect's series."""
    return selector.matches(effect["metric"], effect.get("labels") or {})


def evaluate(rules: list[tuple[str, Selector]], labels: list[dict], pages: list[Page], *,
             tolerance: float = 900.0, lead: float = 0.0, leads: dict[str, float] | None = None,
             series: list[dict] | None = None, warnings=()) -> Evaluation:
    """Score each (rule name, selector) by the module docstring's rules. `leads` overrides
    `lead` for some rules; `series` (the labelled window's series, as in
    `ShopSim.describe()`) names what each rule watches; `warnings` names early-warning rules."""
    reports = []
    answered: set[str] = set()
    leads = dict(leads or {})
    default_lead = lead
    for name, selector in rules:
        lead = leads.get(name, default_lead)
        warning = name in warnings
        mine = [p for p in pages if p.rule == name]
        watched = [s["series"] for s in (series or []) if selects(selector, s)]
        report = RuleReport(name, watched, pages=len(mine))
        primary_hit, any_hit = set(), set()
        for label in labels:
            effects = [e for e in label["effects"] if selects(selector, e)]
            primary = [e for e in effects if e["role"] == "primary"]
            for k, page in enumerate(mine):
                for e in effects:
                    if page.series == e["series"] and _matches(page, e, lead, tolerance, warning):
                        any_hit.add(k)
                        if e["role"] == "primary":
                            primary_hit.add(k)
            if not primary:
                continue
            answered.add(label["id"])
            report.labels.append(_outcome(label, primary, mine, tolerance, lead, warning))
        report.true_pages = len(primary_hit)
        report.explained_pages = len(any_hit - primary_hit)
        report.false_pages = [FalsePage(p, _nearest(p, labels)) for k, p in enumerate(mine) if k not in any_hit]
        reports.append(report)
    unwatched = [lab for lab in labels if lab["id"] not in answered
                 and any(e["role"] == "primary" for e in lab["effects"])]
    return Evaluation(reports, unwatched, tolerance, default_lead, leads, frozenset(warnings))


def _matches(page: Page, effect: dict, lead: float, tolerance: float, warning: bool) -> bool:
    """Whether `page` (on the effect's series) matches the effect (the module docstring)."""
    return (page.fired_in(effect["start"] - lead, effect["end"] + tolerance)
            or (warning and page.open_at(effect["start"])))


def _outcome(label: dict, primary: list[dict], pages: list[Page], tolerance: float, lead: float,
             warning: bool = False) -> LabelOutcome:
    delays, count = [], 0
    for page in pages:
        hits = [e for e in primary
                if page.series == e["series"] and _matches(page, e, lead, tolerance, warning)]
        if hits:
            count += 1
            delays.append(page.fired_at - min(e["start"] for e in hits))
    return LabelOutcome(label["id"], label["kind"], label["start"], label["end"],
                        tuple(e["series"] for e in primary), bool(delays), min(delays) if delays else None,
                        count, label.get("note", ""))


def _nearest(page: Page, labels: list[dict]) -> str | None:
    """The label on the page's series closest in time, said in words ("... ended 25 min before")."""
    best = None
    for label in labels:
        for e in label["effects"]:
            if e["series"] != page.series:
                continue
            if page.fired_at < e["start"]:
                gap, text = e["start"] - page.fired_at, "starts {} later"
            elif page.fired_at <= e["end"]:
                gap, text = 0.0, "was on{}"
            else:
                gap, text = page.fired_at - e["end"], "ended {} before"
            if best is None or gap < best[0]:
                best = (gap, f"{label['id']} {text.format(_span(gap) if gap else '')}")
    return best[1] if best else None


def _span(seconds: float) -> str:
    minutes = seconds / 60
    return f"{minutes:.0f} min" if minutes < 120 else f"{minutes / 60:.1f} h"
