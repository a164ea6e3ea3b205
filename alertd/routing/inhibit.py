"""Inhibition, as Alertmanager does it: a firing source alert mutes matching target alerts.

A rule mutes an alert matching its `target` matchers while some *firing* incident matching
its `source` matchers has the same values for every label in `equal` (a label missing on
both sides counts as equal). When the target also matches the source matchers, only
sources that do not match the target matchers may mute it (Alertmanager's
`Inhibitor.Mutes`): two alerts that each match both sides never mute each other, so an
alert never inhibits itself. Silenced and inhibited sources still inhibit.
"""

from __future__ import annotations

from ..config.routing import InhibitRule
from .tree import alert_labels, routing_labels


class Inhibitor:
    """Built once per flush cycle from the firing incidents; answers `inhibited_by`."""

    def __init__(self, rules: tuple[InhibitRule, ...], firing: list[tuple[str, dict, str, str]]):
        self.rules = rules
        # per rule: equal-label values -> {fingerprint of a firing source: it matches the target too}
        self._sources: list[dict[tuple, dict[str, bool]]] = []
        for rule in rules:
            index: dict[tuple, dict[str, bool]] = {}
            for fp, labels, name, severity in firing:
                full = routing_labels(labels, name, severity)
                if all(m.matches(full) for m in rule.source):
                    two_sided = all(m.matches(full) for m in rule.target)
                    index.setdefault(tuple(full.get(k, "") for k in rule.equal), {})[fp] = two_sided
            self._sources.append(index)
        self.signature = hash(tuple(tuple(sorted((k, tuple(sorted(v.items()))) for k, v in index.items()))
                                    for index in self._sources))

    def inhibited_by(self, incident) -> list[str]:
        """Fingerprints of the firing incidents that inhibit `incident` (empty: not inhibited)."""
        if not self.rules:
            return []
        return self.inhibited_labels(alert_labels(incident), incident.fingerprint)

    def inhibited_labels(self, labels: dict[str, str], fingerprint: str = "") -> list[str]:
        """Fingerprints of the firing incidents that inhibit an alert with these labels."""
        found: set[str] = set()
        for rule, index in zip(self.rules, self._sources):
            if not index or not all(m.matches(labels) for m in rule.target):
                continue
            sources = index.get(tuple(labels.get(k, "") for k in rule.equal))
            if not sources:
                continue
            if all(m.matches(labels) for m in rule.source):  # two-sided: one-sided sources only
                found.update(fp for fp, two_sided in sources.items() if not two_sided)
            else:
                found.update(sources)
        found.discard(fingerprint)
        return sorted(found)
