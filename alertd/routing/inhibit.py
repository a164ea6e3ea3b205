"""Inhibition, as Alertmanager does it: a firing source alert mutes matching target alerts.

A rule mutes an alert matching its `target` matchers while some *firing* incident matching
its `source` matchers has the same values for every label in `equal` (a label missing on
both sides counts as equal). An alert never inhibits itself. Silenced sources still inhibit.
"""

from __future__ import annotations

from ..config.routing import InhibitRule
from .tree import alert_labels


class Inhibitor:
    """Built once per flush cycle from the firing incidents; answers `inhibited_by`."""

    def __init__(self, rules: tuple[InhibitRule, ...], firing: list[tuple[str, dict, str, str]]):
        self.rules = rules
        # per rule: equal-label values -> fingerprints of firing sources with those values
        self._sources: list[dict[tuple, set[str]]] = []
        for rule in rules:
            index: dict[tuple, set[str]] = {}
            for fp, labels, name, severity in firing:
                full = {**labels, "rule": name, "alertname": name, "severity": severity}
                if all(m.matches(full) for m in rule.source):
                    index.setdefault(tuple(full.get(k, "") for k in rule.equal), set()).add(fp)
            self._sources.append(index)
        self.signature = hash(tuple(tuple(sorted((k, tuple(sorted(v))) for k, v in index.items()))
                                    for index in self._sources))

    def inhibited_by(self, incident) -> list[str]:
        """Fingerprints of the firing incidents that inhibit `incident` (empty: not inhibited)."""
        if not self.rules:
            return []
        labels = alert_labels(incident)
        found: set[str] = set()
        for rule, index in zip(self.rules, self._sources):
            if not index or not all(m.matches(labels) for m in rule.target):
                continue
            sources = index.get(tuple(labels.get(k, "") for k in rule.equal), set())
            found |= sources - {incident.fingerprint}
        return sorted(found)
