"""The alert state machine: one open incident per fingerprint, pending -> firing -> resolved.

`AlertTracker.observe` takes one explained verdict of a rule's series and returns what
changed (`Change`): the incident to save, the transition to route, history events and the
flap-detection state. Repeated anomalous points update the open incident (count, last value,
peak score, reason) without a transition, so they never re-notify. Time is the verdict's
timestamp (data time), so replays and a fast simulator follow the same rules.

- `for`: an anomalous series is pending until it has been anomalous this long; a normal
  point while pending closes it quietly (it never fired).
- `clear_for`: a firing incident resolves after this long of normal points (hysteresis);
  an early warning whose line is crossed (`verdict.crossed`) resolves at once ("crossed"):
  the breach's own rule takes over.
- `keep_firing_for`: and not before this long after its last anomalous point (Prometheus).
- Flapping (alertd/incidents/flapping.py): when a fire or resolve is due while the percent state
  change is at or above `high`, the incident is marked flapping instead, with one "flapping"
  transition; further fire/resolve churn is held back until the percentage falls below
  `low`, when the incident settles into its real state (a "firing" or "resolved" transition).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..model import Incident, Status, Verdict
from .flapping import fill_gap, percent_state_change, push

PEAK_EVENT_EVERY = 60.0  # data seconds between two "peak" history events of one incident


def _finite(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


@dataclass(frozen=True)
class Transition:
    """An incident changed state: `kind` is "firing", "resolved" or "flapping"; `incident`
    is a snapshot taken at the change."""

    kind: str
    incident: Incident


@dataclass
class AlertState:
    """What the tracker remembers of a series beyond its incident: its evaluation history."""

    fingerprint: str
    rule: str
    history: int = 0
    evaluations: int = 0
    flapping: bool = False
    peak_noted_at: float | None = None
    evaluated_at: float | None = None  # data time of the last evaluation (stored when the state changes)


@dataclass(slots=True, eq=False)
class Change:
    """The effect of one observation: save `incident`, route `transition`, record `events`
    ((event, detail) pairs at `at`), upsert `state` (when `state_dirty`) or drop it. (Slots:
    one is made for every evaluation of a tracked series, 10,000 a poll in a storm.)"""

    incident: Incident | None
    at: float
    transition: Transition | None = None
    events: list[tuple[str, dict]] = field(default_factory=list)
    state: AlertState | None = None
    state_dirty: bool = False
    dropped: str | None = None


def _snapshot(incident: Incident) -> Incident:
    """A shallow copy: its fields stay as they are now (the tracker replaces the containers
    of an incident, it never changes them in place)."""
    snap = object.__new__(Incident)
    snap.__dict__.update(incident.__dict__)
    return snap


class AlertTracker:
    """Open incidents and tracked series by fingerprint, and the rules that move them."""

    def __init__(self, open_incidents: list[Incident] = (), states: list[tuple] = ()):
        self.open: dict[str, Incident] = {i.fingerprint: i for i in open_incidents}
        self.states: dict[str, AlertState] = {}
        for fp, rule, history, evaluations, flapping, evaluated_at in states:
            self.states[fp] = AlertState(fp, rule, history or 0, evaluations or 0, bool(flapping),
                                         evaluated_at=evaluated_at)

    def is_open(self, fp: str) -> bool:
        return fp in self.open

    def is_tracked(self, fp: str) -> bool:
        """Open, or still remembered for flap detection: the engine evaluates its normal points."""
        return fp in self.open or fp in self.states

    # -- one observation ---------------------------------------------------------------------
    def observe(self, rule, verdict: Verdict, fp: str, cause: str = "anomaly",
                started_at: float | None = None) -> Change | None:
        """Apply one verdict (anomalous or normal) of a rule's series; None if nothing changed.
        `started_at`: when a new incident began, if not at the verdict (a posted alert's start)."""
        status = verdict.status
        if status != Status.ANOMALOUS and status != Status.OK:
            return None
        anomalous = status == Status.ANOMALOUS
        incident = self.open.get(fp)
        state = self.states.get(fp)
        if state is None:
            if incident is None and not anomalous:
                return None
            state = self.states[fp] = AlertState(fp, rule.name)
        history0, evaluations0, flapping0 = state.history, state.evaluations, state.flapping
        flap = rule.flapping
        pct = 0.0
        ts = verdict.ts
        if flap.enabled:
            if flap.interval and state.evaluated_at is not None and state.evaluations:
                state.history, state.evaluations = fill_gap(state.history, state.evaluations,
                                                            ts - state.evaluated_at, flap)
            state.history, state.evaluations = push(state.history, state.evaluations, anomalous, flap.window)
            pct = percent_state_change(state.history, state.evaluations, flap.window)
        state.evaluated_at = ts
        change = Change(incident, ts, state=state)
        due = None  # "fire" or "resolve": what the plain state machine would do now
        if anomalous:
            if incident is None:
                incident = change.incident = Incident(
                    fp, rule.name, {**dict(verdict.labels), **rule.labels}, "pending", rule.severity,
                    started_at=ts if started_at is None else started_at, annotations=dict(rule.annotations),
                    cause=cause)
                self.open[fp] = incident
                change.events.append(("pending", {"reason": verdict.reason}))
            incident.count += 1
            if verdict.value == verdict.value:  # a no-data verdict has no value (NaN)
                incident.last_value = verdict.value
                # the detector's view of the point, for notifications
                incident.expected_low = _finite(verdict.lower)
                incident.expected_high = _finite(verdict.upper)
                incident.score = _finite(verdict.score)
                incident.threshold = _finite(verdict.threshold)
                incident.crossing_at = _finite(verdict.crossing_at)
            incident.reason = verdict.reason
            incident.ok_since = None
            incident.last_anomalous_at = ts
            incident.cause = cause
            score = verdict.score
            if score == score and (incident.peak_score is None or score > incident.peak_score):
                incident.peak_score = score
                if incident.state == "firing" and (state.peak_noted_at is None
                                                    or ts - state.peak_noted_at >= PEAK_EVENT_EVERY):
                    state.peak_noted_at = ts
                    change.events.append(("peak", {"score": score, "value": _num(verdict.value)}))
            if incident.state == "pending" and ts - incident.started_at >= rule.for_:
                due = "fire"
        elif incident is not None:
            if verdict.value == verdict.value:
                incident.last_value = verdict.value
            if incident.state == "pending":
                self._close(incident, ts, "crossed" if verdict.crossed else "cleared", change)
                change.events[-1][1]["before_firing"] = True
            elif verdict.crossed:  # an early warning's line is crossed: the breach takes over now
                due = "resolve"
            else:
                if incident.ok_since is None:
                    incident.ok_since = ts
                last_bad = incident.last_anomalous_at if incident.last_anomalous_at is not None else incident.ok_since
                if ts - incident.ok_since >= rule.clear_for and ts - last_bad >= rule.keep_firing_for:
                    due = "resolve"
        resolution = "no_data" if cause == "no_data" else "crossed" if verdict.crossed else "cleared"
        self._apply(rule, incident, state, due, pct, ts, resolution, change)
        self._untrack(fp, state, change)
        change.state_dirty = change.dropped is None and (
            state.history != history0 or state.evaluations != evaluations0 or state.flapping != flapping0)
        return change

    def _apply(self, rule, incident, state, due, pct, ts, resolution, change) -> None:
        flap = rule.flapping
        if state.flapping and (not flap.enabled or pct < flap.low):
            state.flapping = False
            if incident is not None:
                incident.flapping = False
                change.events.append(("settled", {"percent": round(pct, 1)}))
                if due is None and incident.state == "firing":
                    change.transition = Transition("firing", _snapshot(incident))
                    return
        if due is None:
            return
        if state.flapping or (flap.enabled and pct >= flap.high):
            if not state.flapping:
                state.flapping = True
                incident.flapping = True
                change.events.append(("flapping", {"percent": round(pct, 1)}))
                if due == "fire":
                    self._fire(incident, ts, change)
                change.transition = Transition("flapping", _snapshot(incident))
            elif due == "fire":  # a new incident of a flapping series fires as flapping
                incident.flapping = True
                self._fire(incident, ts, change)
                change.transition = Transition("flapping", _snapshot(incident))
            return  # a due resolve is held back while flapping
        if due == "fire":
            self._fire(incident, ts, change)
            change.transition = Transition("firing", _snapshot(incident))
        else:
            self._close(incident, ts, resolution, change)
            change.transition = Transition("resolved", _snapshot(incident))

    @staticmethod
    def _fire(incident: Incident, ts: float, change: Change) -> None:
        incident.state, incident.fired_at = "firing", ts
        change.events.append(("fired", {}))  # the reason is on the incident and its pending event

    def _close(self, incident: Incident, ts: float, resolution: str, change: Change) -> None:
        incident.state, incident.resolved_at, incident.resolution = "resolved", ts, resolution
        incident.flapping = False
        self.open.pop(incident.fingerprint, None)
        change.incident = incident
        change.events.append(("resolved", {"resolution": resolution}))

    def _untrack(self, fp: str, state: AlertState, change: Change) -> None:
        """Forget a series once it has no open incident and nothing left to flap about."""
        if fp not in self.open and not state.flapping and state.history == 0:
            self.states.pop(fp, None)
            change.dropped = fp

    # -- a series that stopped being reported -------------------------------------------------
    def vanish(self, rule, fp: str, ts: float, resolution: str = "series_missing") -> Change | None:
        """The series is no longer reported: resolve its incident (after keep_firing_for),
        as `resolution` ("series_missing"; "forgotten" for an `absent` rule's series silent
        for longer than `retention`)."""
        incident = self.open.get(fp)
        change = Change(incident, ts)
        if incident is not None:
            if incident.state == "firing":
                last_bad = incident.last_anomalous_at or incident.fired_at or ts
                if ts - last_bad < rule.keep_firing_for:
                    return None
                self._close(incident, ts, resolution, change)
                change.transition = Transition("resolved", _snapshot(incident))
            else:
                self._close(incident, ts, resolution, change)
        if fp in self.states:
            del self.states[fp]
            change.dropped = fp
        return change if (incident is not None or change.dropped) else None

    def forget(self, fp: str) -> Incident | None:
        """Drop an open incident that was resolved outside the state machine (manual resolve)."""
        state = self.states.get(fp)
        if state is not None:
            state.flapping = False
        return self.open.pop(fp, None)


def _num(value) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value
