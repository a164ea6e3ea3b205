"""The alert stage of a tick: verdicts -> state machine -> store -> router, batched.

The engine calls `observe` (or `vanish`) for each verdict of a tick, then `commit` once,
inside the tick's transaction: changed incidents, flap-detection states and history events
are written with a few `executemany` calls, and the tick's transitions go to the router's
groups. The group timer (alertd/routing/timer.py) flushes them when they are due.

`sync` picks up incidents resolved outside the daemon's state machine (`alertd incidents
resolve`, the HTTP API) by watching a counter those actions bump in the store.
"""

from __future__ import annotations

from ..incidents.tracker import AlertTracker, Transition
from ..routing.router import Router
from ..store.history import Event
from ..store.incidents import ACTIONS_KEY

_LOG_EVENTS = {"firing": "incident_fired", "resolved": "incident_resolved"}


class AlertStage:
    """Tracker, router and the batched writes between them."""

    def __init__(self, config, store, clock, metrics, log, integrations=None):
        self.store, self.clock, self.metrics, self.log = store, clock, metrics, log
        self.tracker = AlertTracker(store.incidents.open(), store.alert_states.load())
        self.router = Router(config, store, clock, log, metrics, integrations)
        self._changes: list[tuple] = []
        self._actions_seen = store.get_kv(ACTIONS_KEY, 0)

    def observe(self, rule, verdict, fp: str, cause: str = "anomaly", started_at: float | None = None) -> bool:
        """Apply one verdict; returns whether the series is still tracked afterwards."""
        change = self.tracker.observe(rule, verdict, fp, cause, started_at)
        if change is not None:
            self._changes.append((rule, change))
        return self.tracker.is_tracked(fp)

    def vanish(self, rule, fp: str, ts: float, resolution: str = "series_missing") -> bool:
        """A tracked series was missing from its source's polls; returns whether still tracked."""
        change = self.tracker.vanish(rule, fp, ts, resolution)
        if change is not None:
            self._changes.append((rule, change))
        return self.tracker.is_tracked(fp)

    def sync(self) -> None:
        """Forget open incidents that were resolved by an action outside the tracker."""
        seen = self.store.get_kv(ACTIONS_KEY, 0)
        if seen == self._actions_seen:
            return
        self._actions_seen = seen
        self.router.forget_incidents()
        by_id = {inc.id: fp for fp, inc in self.tracker.open.items() if inc.id is not None}
        for incident_id in self.store.incidents.resolved_among(by_id):
            self.tracker.forget(by_id[incident_id])
        # acknowledged (or no longer) from elsewhere: the tracker's objects are the ones the
        # router is handed again at the next commit, so they take the stored ack
        for incident_id, stored in self.store.incidents.by_ids(list(by_id)).items():
            incident = self.tracker.open.get(by_id[incident_id])
            if incident is not None:
                incident.acknowledged_at, incident.acknowledged_by = stored.acknowledged_at, stored.acknowledged_by
                incident.ack_comment = stored.ack_comment

    def commit(self, poll: tuple[float, set] | None = None) -> list[Transition]:
        """Write this tick's changes and route its transitions (call inside the tick's
        transaction); `poll`: the slices' poll context when a poll's tick commits a slice (see
        Router.route), None for every other commit."""
        if not self._changes:
            return []
        changes, self._changes = self._changes, []
        now = self.clock.now()
        incidents, states, drops, seen = [], {}, [], set()
        for _, change in changes:
            if change.incident is not None and id(change.incident) not in seen:
                seen.add(id(change.incident))
                incidents.append(change.incident)
            if change.dropped:
                states.pop(change.dropped, None)
                drops.append(change.dropped)
            elif change.state_dirty:
                st = change.state
                states[st.fingerprint] = (st.fingerprint, st.rule, st.history, st.evaluations, int(st.flapping),
                                          st.evaluated_at if st.evaluated_at is not None else now)
        self.store.incidents.save_many(incidents)
        self.router.remember(incidents)
        self.store.alert_states.write(list(states.values()), drops)
        events, transitions, counts = [], [], {}
        for rule, change in changes:
            inc = change.incident
            if change.events:
                events += [Event(inc.id if inc else None, inc.fingerprint if inc else "", change.at, name, detail)
                           for name, detail in change.events]
            if change.transition is not None:
                change.transition.incident.id = inc.id
                transitions.append(change.transition)
                key = (rule.name, change.transition.incident.severity, change.transition.kind)
                counts[key] = counts.get(key, 0) + 1
                self._log_transition(rule, change.transition)
        for labels, n in counts.items():  # one metric update per kind of transition, not per alert
            self.metrics.incident_transitions.labels(*labels).inc(n)
        self.store.history.add(events)
        if transitions:
            self.router.route(transitions, now, poll)
        return transitions

    def _log_transition(self, rule, transition: Transition) -> None:
        incident = transition.incident
        event = _LOG_EVENTS.get(transition.kind) or f"incident_{transition.kind}"
        self.log.info(event, rule=rule.name, fingerprint=incident.fingerprint, incident=incident.id,
                      labels=incident.labels, reason=incident.reason)

    def reset(self) -> None:
        """After a rolled-back tick: drop its changes and reload the state from the store."""
        self._changes = []
        self.tracker = AlertTracker(self.store.incidents.open(), self.store.alert_states.load())
        self.router.forget_incidents()
