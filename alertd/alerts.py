"""The alert state machine: one open incident per fingerprint, pending -> firing -> resolved.

`AlertTracker.observe` takes one explained verdict of a rule's series and returns the state
change it caused, if any. Repeated anomalous points update the open incident (count, last
value, peak score, reason) without a new transition, so they never re-notify. Time is the
verdict's timestamp (data time), so replays and a fast simulator follow the same rules.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

from .model import Incident, Status, Verdict


def _finite(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


@dataclass(frozen=True)
class Transition:
    """An incident changed state: `kind` is "firing" or "resolved"; `incident` is a snapshot."""

    kind: str
    incident: Incident


class AlertTracker:
    """Open incidents by fingerprint, and the rules that move them between states."""

    def __init__(self, open_incidents: list[Incident] = ()):
        self.open: dict[str, Incident] = {i.fingerprint: i for i in open_incidents}

    def is_open(self, fp: str) -> bool:
        return fp in self.open

    def observe(self, rule, verdict: Verdict, fp: str) -> tuple[Incident | None, Transition | None]:
        """Apply one verdict; returns (the incident to save, or None; the transition, or None)."""
        incident = self.open.get(fp)
        if verdict.status == Status.ANOMALOUS:
            if incident is None:
                incident = Incident(fp, rule.name, {**dict(verdict.labels), **rule.labels},
                                    "pending", rule.severity, started_at=verdict.ts,
                                    annotations=dict(rule.annotations))
                self.open[fp] = incident
            incident.count += 1
            incident.last_value = verdict.value
            incident.reason = verdict.reason
            incident.ok_since = None
            incident.expected_low = _finite(verdict.lower)
            incident.expected_high = _finite(verdict.upper)
            incident.score = _finite(verdict.score)
            incident.threshold = _finite(verdict.threshold)
            if incident.peak_score is None or verdict.score > incident.peak_score:
                incident.peak_score = verdict.score
            if incident.state == "pending" and verdict.ts - incident.started_at >= rule.for_:
                incident.state = "firing"
                incident.fired_at = verdict.ts
                return incident, Transition("firing", copy.deepcopy(incident))
            return incident, None
        if verdict.status != Status.OK or incident is None:
            return None, None
        # A normal point for an open incident.
        incident.last_value = verdict.value
        if incident.state == "pending":
            incident.state, incident.resolved_at = "resolved", verdict.ts
            del self.open[fp]
            return incident, None
        if incident.ok_since is None:
            incident.ok_since = verdict.ts
        if verdict.ts - incident.ok_since >= rule.clear_for:
            incident.state, incident.resolved_at = "resolved", verdict.ts
            del self.open[fp]
            return incident, Transition("resolved", copy.deepcopy(incident))
        return incident, None
