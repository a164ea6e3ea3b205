"""The routing sections of the config: `routes`, `inhibit_rules`, `time_intervals`, and the
per-receiver delivery settings, validated with the same file:line:key errors as the rest.

They follow Alertmanager's configuration: a child route inherits `receiver`, `group_by`,
`group_wait`, `group_interval` and `repeat_interval` from its parent (but not its time
intervals, as in Alertmanager); `group_by: [...]` groups by all labels.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from ..matchers import Matcher, parse_matchers
from .schema import Duration, Where, build, suggest
from .time_intervals import TimeIntervalSpec, parse_spec
from .yamlsrc import YamlList, YamlMap

LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
DEFAULT_GROUP_WAIT = 30.0  # Alertmanager's defaults for the root route
DEFAULT_GROUP_INTERVAL = 300.0
DEFAULT_REPEAT_INTERVAL = 4 * 3600.0


# -- as users write them --------------------------------------------------------------------
@dataclass(frozen=True)
class RouteCore:
    receiver: str | None = None
    match: dict[str, str] = field(default_factory=dict)
    match_re: dict[str, str] = field(default_factory=dict)
    matchers: list[str] = field(default_factory=list)
    continue_: bool = field(default=False, metadata={"key": "continue"})
    group_by: list[str] | None = None
    group_wait: Duration | None = None
    group_interval: Duration | None = None
    repeat_interval: Duration | None = None
    mute_time_intervals: list[str] = field(default_factory=list)
    active_time_intervals: list[str] = field(default_factory=list)
    routes: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class InhibitCore:
    source_matchers: list[str] = field(default_factory=list)
    target_matchers: list[str] = field(default_factory=list)
    source_match: dict[str, str] = field(default_factory=dict)
    source_match_re: dict[str, str] = field(default_factory=dict)
    target_match: dict[str, str] = field(default_factory=dict)
    target_match_re: dict[str, str] = field(default_factory=dict)
    equal: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TimeIntervalCore:
    name: str
    time_intervals: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class RateLimit:
    """Token bucket: `rate` notices per `per`, with bursts of up to `burst`."""

    rate: int
    per: Duration = Duration(60)
    burst: int | None = None

    def check(self):
        if self.rate < 1:
            raise ValueError("rate_limit.rate must be at least 1 notice")
        if self.per <= 0:
            raise ValueError("rate_limit.per must be more than 0s; write a value such as 1m")
        if self.burst is not None and self.burst < 1:
            raise ValueError("rate_limit.burst must be at least 1")

    @property
    def per_second(self) -> float:
        return self.rate / float(self.per)

    @property
    def capacity(self) -> int:
        return self.burst if self.burst is not None else self.rate


@dataclass(frozen=True)
class ReceiverCore:
    integrations: list[Any] = field(default_factory=list)
    rate_limit: RateLimit | None = None
    deadline: Duration = Duration(3600)
    fallback: str | None = None
    failing_after: int = 3


@dataclass(frozen=True)
class ReceiverSettings:
    """How a receiver's notices are delivered (defaults apply to the plain list form).

    `deadline`: give up retrying a notice this long after it was queued; `rate_limit`: a
    token bucket per integration, over which notices are folded into one digest;
    `fallback`: the receiver told when this one keeps failing (`failing_after` failed
    attempts in a row, or a notice given up).
    """

    rate_limit: RateLimit | None = None
    deadline: float = 3600.0
    fallback: str | None = None
    failing_after: int = 3


# -- validated ------------------------------------------------------------------------------
@dataclass(frozen=True)
class RouteConfig:
    """A node of the route tree, with inherited settings already filled in."""

    receiver: str
    matchers: tuple
    continue_: bool
    routes: tuple["RouteConfig", ...]
    group_by: tuple[str, ...] = ()
    group_by_all: bool = False
    group_wait: float = DEFAULT_GROUP_WAIT
    group_interval: float = DEFAULT_GROUP_INTERVAL
    repeat_interval: float = DEFAULT_REPEAT_INTERVAL
    mute_time_intervals: tuple[str, ...] = ()
    active_time_intervals: tuple[str, ...] = ()


@dataclass(frozen=True)
class InhibitRule:
    """Mute alerts matching `target` while an alert matching `source` fires with the same
    values of the `equal` labels."""

    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...] = ()


# -- builders -------------------------------------------------------------------------------
def _line(mapping, key):
    return mapping.line_of(key) if isinstance(mapping, (YamlMap, YamlList)) else None


def _q(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"')


def collect_matchers(where: Where, raw, equal: dict, regex: dict, texts, names=("match", "match_re", "matchers")):
    """Matchers from the three spellings; each bad one is a problem at its own key."""
    out: list[Matcher] = []
    for kind, mapping, op in ((names[0], equal, "="), (names[1], regex, "=~")):
        sub = where.child(kind, _line(raw, kind))
        for label, value in mapping.items():
            if not LABEL_NAME.match(label):
                sub.child(label, _line(raw.get(kind), label)).error(
                    f'"{label}" is not a label name; use letters, digits and _')
                continue
            try:
                out.append(Matcher.make(label, op, str(value)))
            except ValueError as exc:
                sub.child(label, _line(raw.get(kind), label)).error(str(exc))
    sub = where.child(names[2], _line(raw, names[2]))
    for i, text in enumerate(texts):
        try:
            out += parse_matchers(text)
        except ValueError as exc:
            sub.item(i, _line(raw.get(names[2]), i)).error(str(exc))
    return tuple(out)


def _group_by(values, where: Where) -> tuple[tuple[str, ...], bool] | None:
    values = tuple(values)
    if "..." in values:
        if len(values) > 1:
            where.error('"..." groups by all labels and cannot be combined with label names; '
                        'write either [...] or a list of labels')
            return None
        return (), True
    bad = [v for v in values if not LABEL_NAME.match(v)]
    if bad:
        where.error(f'"{bad[0]}" is not a label name; use letters, digits and _, or "..." for all labels')
        return None
    return tuple(sorted(set(values))), False


def build_route(raw, where: Where, receivers, intervals, parent: RouteConfig | None) -> RouteConfig | None:
    """Validate one route node and its children, inheriting from `parent`."""
    core = build(RouteCore, raw, where)
    if core is None:
        return None
    receiver = core.receiver or (parent.receiver if parent else None)
    if receiver is None:
        where.error('the route has no receiver and none to inherit; add "receiver"')
    elif receiver not in receivers:
        where.child("receiver", _line(raw, "receiver")).error(
            f'the route names the receiver "{receiver}", which is not defined under receivers'
            f"{suggest(receiver, receivers)}")
    matchers = collect_matchers(where, raw, core.match, core.match_re, core.matchers)
    group_by, group_by_all = (parent.group_by, parent.group_by_all) if parent else ((), False)
    if core.group_by:  # as in Alertmanager, an empty list (like none) inherits the parent's
        grouped = _group_by(core.group_by, where.child("group_by", _line(raw, "group_by")))
        if grouped is not None:
            group_by, group_by_all = grouped
    timing = {}
    for key, default in (("group_wait", DEFAULT_GROUP_WAIT), ("group_interval", DEFAULT_GROUP_INTERVAL),
                         ("repeat_interval", DEFAULT_REPEAT_INTERVAL)):
        value = getattr(core, key)
        if value is not None and key != "group_wait" and value <= 0:
            where.child(key, _line(raw, key)).error(f"{key} must be more than 0s; write a value such as 5m")
        timing[key] = float(value) if value is not None else (getattr(parent, key) if parent else default)
    for key in ("mute_time_intervals", "active_time_intervals"):
        names = getattr(core, key)
        for i, name in enumerate(names):
            if name not in intervals:
                where.child(key, _line(raw, key)).item(i, _line(raw.get(key), i)).error(
                    f'the time interval "{name}" is not defined under time_intervals'
                    f"{suggest(name, intervals)}")
        if parent is None and names:
            where.child(key, _line(raw, key)).error(
                f"the top-level route cannot have {key}; put them on a child route")
    if parent is None and matchers:
        where.error("the top-level route matches everything; move match/matchers to a child route")
    node = RouteConfig(receiver or "", matchers, core.continue_, (), group_by, group_by_all,
                       timing["group_wait"], timing["group_interval"], timing["repeat_interval"],
                       tuple(core.mute_time_intervals), tuple(core.active_time_intervals))
    children = []
    raw_children = raw.get("routes") if isinstance(raw, dict) else None
    if raw_children is not None and not isinstance(raw_children, list):
        where.child("routes", _line(raw, "routes")).error(
            "expected a list of child routes such as [{match: {severity: critical}, receiver: oncall}]")
    if not isinstance(raw_children, list):
        raw_children = []
    for i, child in enumerate(raw_children):
        built = build_route(child, where.child("routes", _line(raw, "routes")).item(i, _line(raw_children, i)),
                            receivers, intervals, node)
        if built is not None:
            children.append(built)
    return replace(node, routes=tuple(children))


def default_route(receivers) -> RouteConfig:
    """The tree used when the config has no `routes`: everything to the first receiver."""
    return RouteConfig(next(iter(receivers)), (), False, ())


def build_inhibit_rules(raw, where: Where) -> tuple[InhibitRule, ...]:
    """`inhibit_rules`: a list of {source_matchers, target_matchers, equal}."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        where.error("expected a list of inhibit rules")
        return ()
    rules = []
    for i, item in enumerate(raw):
        sub = where.item(i, _line(raw, i))
        core = build(InhibitCore, item, sub)
        if core is None:
            continue
        before = len(sub.problems)
        source = collect_matchers(sub, item, core.source_match, core.source_match_re, core.source_matchers,
                                  ("source_match", "source_match_re", "source_matchers"))
        target = collect_matchers(sub, item, core.target_match, core.target_match_re, core.target_matchers,
                                  ("target_match", "target_match_re", "target_matchers"))
        if len(sub.problems) > before:
            continue  # a bad matcher was reported; an empty side would only repeat it
        if not source:
            sub.error("the inhibit rule has no source matchers; add source_matchers such as "
                      "['severity=\"critical\"']")
        if not target:
            sub.error("the inhibit rule has no target matchers, so it would mute every alert; add "
                      "target_matchers such as ['severity=\"warning\"']")
        bad = [label for label in core.equal if not LABEL_NAME.match(label)]
        if bad:
            sub.child("equal", _line(item, "equal")).error(f'"{bad[0]}" is not a label name')
        if source and target and not bad:
            rules.append(InhibitRule(source, target, tuple(core.equal)))
    return tuple(rules)


def build_time_intervals(raw, where: Where) -> dict[str, tuple[TimeIntervalSpec, ...]]:
    """`time_intervals`: a list of {name, time_intervals: [specs]}."""
    if raw is None:
        return {}
    if not isinstance(raw, list):
        where.error("expected a list of named time intervals, each {name: ..., time_intervals: [...]}")
        return {}
    out: dict[str, tuple[TimeIntervalSpec, ...]] = {}
    for i, item in enumerate(raw):
        sub = where.item(i, _line(raw, i))
        core = build(TimeIntervalCore, item, sub)
        if core is None:
            continue
        sub = sub.at(sub.line, f"time_intervals[{core.name}]")
        if core.name in out:
            sub.error(f'the time interval name "{core.name}" is used twice; names must be unique')
        specs, raw_specs = [], item.get("time_intervals") or []
        for j, spec in enumerate(raw_specs):
            parsed = parse_spec(spec, sub.child("time_intervals").item(j, _line(raw_specs, j)))
            if parsed is not None:
                specs.append(parsed)
        out[core.name] = tuple(specs)
    return out


def build_receiver(name: str, raw, where: Where) -> tuple[list, ReceiverSettings | None]:
    """Split a receiver into its integrations and its delivery settings.

    A receiver is a list of integrations, one integration mapping (with `type`), or a
    mapping of settings with an `integrations` list.
    """
    if isinstance(raw, dict) and "type" in raw:
        return YamlList([raw]), ReceiverSettings()
    if isinstance(raw, list):
        return raw, ReceiverSettings()
    if not isinstance(raw, dict):
        where.error("expected a list of integrations such as [{type: console}]")
        return [], None
    core = build(ReceiverCore, raw, where)
    if core is None:
        return raw.get("integrations") or [], None
    if core.deadline <= 0:
        where.child("deadline", _line(raw, "deadline")).error("deadline must be more than 0s; write a value such as 1h")
    if core.failing_after < 1:
        where.child("failing_after", _line(raw, "failing_after")).error("failing_after must be at least 1")
    if core.fallback == name:
        where.child("fallback", _line(raw, "fallback")).error(
            "a receiver cannot be its own fallback; name another receiver")
    integrations = raw.get("integrations") or YamlList()
    return integrations, ReceiverSettings(core.rate_limit, float(core.deadline), core.fallback,
                                          core.failing_after)


def check_fallbacks(settings: dict[str, ReceiverSettings], raw_receivers, where: Where) -> None:
    """Every fallback must name a defined receiver."""
    for name, s in settings.items():
        if s.fallback is not None and s.fallback not in settings:
            raw = raw_receivers.get(name)
            where.child(name, _line(raw_receivers, name)).child("fallback", _line(raw, "fallback")).error(
                f'the fallback receiver "{s.fallback}" is not defined under receivers'
                f"{suggest(s.fallback, settings)}")
