"""Checks of a rule's detector against the rest of the config: its source's interval and the
store's retention (`Detector.check_setting`). An early warning whose horizon is shorter than
the time between two points, or a season longer than what the store keeps, is a config error
at its key's line, in one sentence, like any other."""

from __future__ import annotations

import dataclasses

from ..base import RuleSetting
from .schema import Where
from .yamlsrc import YamlList, YamlMap


def _line_of(raw, path: str) -> int | None:
    """The line of a dotted key path inside a raw (YAML) mapping, or None."""
    node, line = raw, None
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return line
        if isinstance(node, YamlMap):
            line = node.line_of(part) or line
        node = node[part]
    return line


def data_interval(registry, source) -> float | None:
    """The data time between two polls of `source` (a SourceConfig): what its verdicts'
    timestamps advance by (a simulator's 2 s poll may be 2 minutes of its data)."""
    cls = registry.get("source", source.type)
    return cls.data_interval(source.params, source.every) if cls is not None else source.every


def check_rule_setting(registry, rule, raw_detector, interval: float | None, retention: float | None,
                       where: Where) -> None:
    """Report the problems `check_setting` finds in the rule's detector (and the parts of an
    `all`/`any`) at `where` (the rule's `detector` key); `interval`: its source's data
    interval. `retention` None: not set, so alertd chooses one that keeps what the rules read
    (config/history.py): nothing to check against."""
    retention = float("inf") if retention is None else float(retention)
    _check(registry, rule.detector, raw_detector, RuleSetting(interval, retention), where)


def _check(registry, detector, raw, setting: RuleSetting, where: Where) -> None:
    cls = getattr(detector, "cls", None) or registry.get("detector", detector.type)
    if cls is None:
        return
    for key, message in cls.check_setting(detector.params, setting):
        where.child(key, _line_of(raw, key)).error(message)
    for f in dataclasses.fields(detector.params) if dataclasses.is_dataclass(detector.params) else ():
        if not f.metadata.get("detectors"):
            continue
        items = raw.get(f.name) if isinstance(raw, dict) else None
        for i, part in enumerate(getattr(detector.params, f.name) or ()):
            item = items[i] if isinstance(items, list) and i < len(items) else None
            line = items.line_of(i) if isinstance(items, YamlList) else None
            _check(registry, part, item, setting, where.child(f.name).item(i, line))
