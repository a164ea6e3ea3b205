"""How much history each rule needs, and the `retention` that keeps it.

A rule's detector reads history in three ways: its window and warm-up (`window`,
`min_history` points), and, for a trainable one, its training plan (`TrainingPlan.span`
seconds, or `points` at the source's interval, and `min_span`, the least a fit can use).
Back-fill fetches that much when a rule starts (alertd/daemon/backfill.py), and fits read
it from the store: the store must keep it, or the rule fits on less than it needs, or never.

- `retention` not set: alertd keeps max(7d, what the rules read);
- set shorter than the least a rule can work with: a config error at `retention`, saying
  which rule and what to set;
- set shorter than what a rule reads, but not below its least: a warning (the rule works,
  on less history than it was made for).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..base import PluginContext
from ..durations import format_duration

DEFAULT_RETENTION = 7 * 86400.0


@dataclass(frozen=True)
class HistoryNeed:
    """Seconds of history one rule reads (`wanted`) and the least it can work with."""

    rule: str
    detector: str
    wanted: float
    least: float


def need_of(rule, detector_cls, interval: float | None) -> HistoryNeed | None:
    """The history the rule's detector reads; None when it cannot be told (a cron source, a
    detector that cannot be built without the daemon)."""
    try:
        det = detector_cls(rule.detector.params, PluginContext(name=rule.name, now=lambda: 0.0))
        plan = det.training_plan() if getattr(det, "trainable", False) else None
    except Exception:  # a plugin that needs more than params to be built: it says nothing
        return None
    points = max(int(getattr(det, "window", 0) or 0), int(getattr(det, "min_history", 0) or 0))
    warm = points * interval if interval else 0.0
    wanted, least = warm, warm
    if plan is not None:
        if plan.span:
            wanted = max(wanted, plan.span)
        elif interval:
            wanted = max(wanted, plan.points * interval)
        least = max(least, plan.min_span or 0.0)
    if not wanted and not least:
        return None
    return HistoryNeed(rule.name, rule.detector.type, wanted, least)


def needs(rules, sources: dict, registry) -> list[HistoryNeed]:
    """The history need of every rule that has one."""
    out = []
    for rule in rules:
        cls = registry.get("detector", rule.detector.type)
        source = sources.get(rule.source)
        if cls is None or source is None:
            continue
        need = need_of(rule, cls, source.every)
        if need is not None:
            out.append(need)
    return out


def choose_retention(given: float | None, rule_needs: list[HistoryNeed], where,
                     intervals: dict[str, float] | None = None) -> tuple[float, list[str]]:
    """The retention to use and warnings; errors (a set retention below a rule's least, or
    below two polls of a source) go to `where` (the `retention` key's position)."""
    if given is None:
        wanted = max([DEFAULT_RETENTION, *(n.wanted for n in rule_needs)])
        return wanted, []
    if given <= 0:
        where.error("retention must be more than 0s (samples older than it are deleted); write for example 7d")
        return given, []
    for name, every in (intervals or {}).items():
        if every and given < 2 * every:
            where.error(f'retention ({format_duration(given)}) is shorter than two polls of the source "{name}" '
                        f"(every {format_duration(every)}): its series would be dropped as silent between polls; "
                        f"set retention: {format_duration(max(2 * every, DEFAULT_RETENTION))} or more")
    warnings = []
    for n in rule_needs:
        text = f'the rule "{n.rule}" ({n.detector} detector) reads {format_duration(n.wanted)} of history'
        if given < n.least:
            where.error(f"{text} and needs at least {format_duration(n.least)}, but retention is "
                        f"{format_duration(given)}: its fits read the store, so it would never fit and never fire; set retention: "
                        f"{format_duration(n.wanted)} (or more), or remove the key to let alertd choose")
        elif given < n.wanted:
            warnings.append(f"{where.file}:{where.line}: {where.key}: {text}, but retention is "
                            f"{format_duration(given)}: it would fit on less history than it was made for; "
                            f"set retention: {format_duration(n.wanted)}, or remove the key to let alertd choose")
    return given, warnings
