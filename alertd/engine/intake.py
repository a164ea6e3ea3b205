"""Alerts posted to the Alertmanager API become incidents of their own.

Prometheus (and amtool, Grafana, anything that speaks Alertmanager's API) posts alerts:
labels, annotations, `startsAt`, `endsAt`, `generatorURL`. `AlertIntake.receive` turns each
into an observation of the same alert state machine the rules use, so a posted alert is an
incident like any other (cause "posted"): routed, grouped, silenced, inhibited, acknowledged,
flap-detected and delivered through the outbox. What is Alertmanager's own is kept:

- the incident's fingerprint is Alertmanager's (a hash of the labels), its rule is the
  `alertname` label, its severity the `severity` label (if any); it fires at once (the
  sender already applied its `for`);
- times as Alertmanager's API sets them: no `startsAt` means now (or `endsAt` if given); no
  `endsAt` means now + `posted_alerts.resolve_timeout`; an alert whose `endsAt` has passed
  is resolved (at its `endsAt`);
- a firing alert that is not posted again resolves when its `endsAt` passes
  (`expire_due`, called by the group timer before it flushes, at `next_expiry`).

The engine's `alert_round` runs each batch in one store transaction: a failed batch changes
nothing, and what an earlier batch committed stays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..config.types import FlapSettings
from ..model import Status, Verdict, make_labels
from .rule_runtime import TickResult

_FNV_OFFSET, _FNV_PRIME, _MASK = 0xCBF29CE484222325, 0x100000001B3, (1 << 64) - 1


def am_fingerprint(labels: dict[str, str]) -> str:
    """Alertmanager's (Prometheus') fingerprint of a label set: FNV-1a 64 over the sorted
    names and values, each followed by the byte 0xff; 16 hex digits."""
    h = _FNV_OFFSET
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in part.encode():
                h = ((h ^ byte) * _FNV_PRIME) & _MASK
            h = ((h ^ 0xFF) * _FNV_PRIME) & _MASK
    return f"{h:016x}"


class IntakeError(Exception):
    """A post failed part way: `accepted` of `total` alerts were committed before the error."""

    def __init__(self, accepted: int, total: int):
        super().__init__(f"{accepted} of {total} alerts were accepted")
        self.accepted, self.total = accepted, total


@dataclass(frozen=True)
class PostedAlert:
    """One alert as posted (times in epoch seconds; None where the sender left them out)."""

    labels: dict[str, str]
    annotations: dict[str, str] = field(default_factory=dict)
    starts_at: float | None = None
    ends_at: float | None = None
    generator_url: str = ""


@dataclass(frozen=True)
class PostedRule:
    """The rule-like description of a posted alert, as the alert tracker reads rules."""

    name: str
    severity: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    for_: float = 0.0
    clear_for: float = 0.0
    keep_firing_for: float = 0.0
    no_data: str = "keep_state"
    flapping: FlapSettings = FlapSettings()


def _reason(annotations: dict[str, str]) -> str:
    return annotations.get("summary") or annotations.get("description") or "posted to the Alertmanager API"


class AlertIntake:
    """Feeds posted alerts into the engine's alert stage (`engine.alerting`, which a reload
    replaces: it is looked up at each call)."""

    def __init__(self, engine, clock):
        self.engine, self.clock = engine, clock

    def _settings(self):
        return self.engine.config.posted_alerts

    def receive(self, alerts: list[PostedAlert]) -> TickResult:
        """Apply a batch of posted alerts in one transaction; returns what changed."""
        now = self.clock.now()
        return self.engine.alert_round(lambda: [self._observe(alert, now) for alert in alerts])

    def _observe(self, alert: PostedAlert, now: float) -> None:
        settings = self._settings()
        starts, ends = alert.starts_at, alert.ends_at
        if starts is None:
            starts = now if ends is None else ends
        if ends is None:
            ends = now + settings.resolve_timeout
        firing = ends > now
        fp = am_fingerprint(alert.labels)
        tracker = self.engine.tracker
        existing = tracker.open.get(fp)
        rule = PostedRule(alert.labels.get("alertname", ""), alert.labels.get("severity", ""),
                          annotations=dict(alert.annotations), flapping=settings.flapping)
        verdict = Verdict(rule.name, fp, make_labels(alert.labels), now, math.nan,
                          Status.ANOMALOUS if firing else Status.OK, math.nan, math.nan, math.nan,
                          math.nan, _reason(alert.annotations))
        self.engine.alerting.observe(rule, verdict, fp, "posted", min(starts, now))
        incident = tracker.open.get(fp) if firing else existing
        if incident is None:
            return
        if firing:
            if incident.id is not None and incident.annotations != alert.annotations:  # the latest wins
                self.engine.store.incidents.mark(incident.id, annotations=dict(alert.annotations))
            incident.annotations = dict(alert.annotations)
            incident.ends_at, incident.generator_url = ends, alert.generator_url or None
        elif incident.state == "resolved":  # resolved at its endsAt, as Alertmanager shows it
            incident.ends_at = ends
            incident.resolved_at = max(min(ends, now), incident.started_at)

    # -- alerts that are not posted again ------------------------------------------------------
    def _due(self, now: float) -> list:
        return [i for i in self.engine.tracker.open.values()
                if i.cause == "posted" and i.ends_at is not None and i.ends_at <= now]

    def next_expiry(self) -> float | None:
        """When the next firing posted alert resolves unless it is posted again (None: none)."""
        ends = [i.ends_at for i in self.engine.tracker.open.values()
                if i.cause == "posted" and i.ends_at is not None]
        return min(ends) if ends else None

    def expire_due(self, now: float | None = None) -> TickResult:
        """Resolve the posted alerts whose `endsAt` has passed (at their `endsAt`)."""
        now = self.clock.now() if now is None else now
        due = self._due(now)
        if not due:
            return TickResult()

        def work():
            for incident in self._due(now):
                labels = {k: v for k, v in incident.labels.items()}
                self._observe(PostedAlert(labels, dict(incident.annotations), incident.started_at,
                                          incident.ends_at, incident.generator_url or ""), now)
        return self.engine.alert_round(work)
