"""Meta-incidents for receivers that keep failing, told to their fallback receiver.

An integration "keeps failing" after `failing_after` failed attempts in a row, or as soon
as a notice to it is given up (permanent error or deadline). Then an incident of the rule
`alertd_receiver_failing` (labels: receiver, integration, notifier) fires: it is stored and
listed like any incident, logged, and sent straight to the receiver's `fallback` (no route,
no group wait: the usual path is what is broken). The next successful delivery resolves it
and tells the fallback. A fallback is never told about its own failures (no loops).
"""

from __future__ import annotations

from ..model import Incident, fingerprint, make_labels
from ..routing.notices import build_notification, external_url_of, idempotency_key
from ..store.history import Event

RULE = "alertd_receiver_failing"


class ReceiverHealth:
    """Counts failures per (receiver, integration) and opens/resolves meta-incidents."""

    def __init__(self, store, config, notifier_types: dict, log, metrics):
        self.store, self.config, self.log, self.metrics = store, config, log, metrics
        self.notifier_types = notifier_types  # (receiver, index) -> notifier type
        self.failures: dict[tuple[str, int], int] = {}
        self.open: dict[tuple[str, int], Incident] = {}
        for inc in store.incidents.list(rule=RULE):
            key = (inc.labels.get("receiver", ""), int(inc.labels.get("integration", 0)))
            self.open[key] = inc
        self.metrics.receivers_failing.set(len(self.open))

    def settings(self, receiver: str):
        return self.config.delivery(receiver) if self.config is not None else None

    def failure(self, key: tuple[str, int], error: str, now: float, *, gave_up: bool = False) -> None:
        count = self.failures[key] = self.failures.get(key, 0) + 1
        settings = self.settings(key[0])
        threshold = settings.failing_after if settings is not None else 3
        notifier = self.notifier_types.get(key, "?")
        reason = (f"{count} deliveries in a row to receiver {key[0]} ({notifier} #{key[1]}) failed"
                  f"{'; a notice was given up' if gave_up else ''}; last error: {error}")
        incident = self.open.get(key)
        if incident is not None:
            incident.count, incident.reason, incident.last_value = count, reason, float(count)
            self.store.incidents.save(incident)
            return
        if count < threshold and not gave_up:
            return
        labels = {"receiver": key[0], "integration": str(key[1]), "notifier": notifier}
        incident = Incident(fingerprint(RULE, make_labels(labels)), RULE, labels, "firing", "critical",
                            started_at=now, fired_at=now, count=count, last_value=float(count), reason=reason,
                            annotations={"summary": f"Notifications to {key[0]} are failing: {error}"})
        with self.store.atomic():
            self.store.incidents.save(incident)
            self.store.history.add([Event(incident.id, incident.fingerprint, now, "fired", {"reason": reason})])
            self._tell_fallback(incident, "firing", now)
        self.open[key] = incident
        self.metrics.receivers_failing.set(len(self.open))
        self.log.error("receiver_failing", receiver=key[0], integration=key[1], notifier=notifier,
                       failures=count, error=error, fallback=settings.fallback if settings else None)

    def success(self, key: tuple[str, int], now: float) -> None:
        self.failures[key] = 0
        incident = self.open.pop(key, None)
        if incident is None:
            return
        incident.state, incident.resolved_at, incident.resolution = "resolved", now, "cleared"
        with self.store.atomic():
            self.store.incidents.save(incident)
            self.store.history.add([Event(incident.id, incident.fingerprint, now, "resolved",
                                          {"resolution": "delivered again"})])
            self._tell_fallback(incident, "resolved", now)
        self.metrics.receivers_failing.set(len(self.open))
        self.log.info("receiver_recovered", receiver=key[0], integration=key[1])

    def _tell_fallback(self, incident: Incident, kind: str, now: float) -> None:
        settings = self.settings(incident.labels["receiver"])
        fallback = settings.fallback if settings is not None else None
        if not fallback or fallback == incident.labels["receiver"]:
            if kind == "firing":
                reason = "no fallback receiver is configured for this receiver"
                incident.suppressed = reason
                self.store.incidents.mark(incident.id, suppressed=reason)
                self.store.history.add([Event(incident.id, incident.fingerprint, now, "suppressed",
                                              {"reason": reason})])
            return
        targets = [(index, notifier) for (receiver, index), notifier in sorted(self.notifier_types.items())
                   if receiver == fallback]
        note = build_notification(fallback, kind, idempotency_key(incident.fingerprint, kind, incident.id),
                                  [incident], "", {}, now, external_url=external_url_of(self.config))
        self.store.outbox.enqueue(note, targets, now, deadline=self.config.delivery(fallback).deadline)
        self.store.history.add([Event(incident.id, incident.fingerprint, now, "notified",
                                      {"receiver": fallback, "kind": kind, "reason": "receiver failing"})])
        if kind == "firing":
            incident.notified_at = now
            self.store.incidents.mark(incident.id, notified_at=now)
