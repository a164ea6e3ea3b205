"""One flush cycle of the due alert groups: Alertmanager's notification pipeline.

For each due group: mark members silenced or inhibited (they stay in the group, tracked and
shown, but are left out of notices), stop if the route is muted by a time interval, then for
each enabled integration of the receiver decide from the notification log whether a notice
is needed (`needs_update`, Alertmanager's dedup rules, plus acknowledgement and flapping),
and queue it in the outbox. Then the group's timer moves to `group_interval` from now,
resolved members are dropped and an empty group is deleted. Everything of one cycle is
committed in one transaction, so a crash redoes the cycle instead of losing or doubling it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..render.payloads import am_group_key
from ..store.groups import LogEntry, Member
from ..store.history import Event, SharedDetail
from .notices import build_notification, forget_label_views, group_fingerprint, idempotency_key
from .tree import alert_labels

ACTIVE = ("firing", "flapping")


def needs_update(entry: LogEntry | None, firing: set, resolved: set, flapping: set,
                 repeat: float, now: float, unacked: bool) -> str | None:
    """Why a notice is due (Alertmanager's DedupStage, plus flapping and acks), or None.

    `resolved` is empty for an integration with send_resolved off. A repeat is only sent
    while some firing incident of the group is not acknowledged.
    """
    if entry is None:
        return "first notification" if firing else None
    if not firing <= entry.firing:
        return "new alerts"
    if not flapping <= entry.flapping:
        return "flapping"
    if not firing:
        return "all resolved" if entry.firing else None
    if resolved and not resolved <= entry.resolved:
        return "some resolved"
    if unacked and now - entry.notified_at >= repeat:
        return "repeat interval elapsed"
    return None


def notice_kind(reason: str, entry: LogEntry | None, firing: set, flapping: set) -> str:
    """firing | resolved | flapping: flapping when the only news is flapping incidents."""
    if not firing:
        return "resolved"
    new = firing - (entry.firing if entry else frozenset())
    if reason == "flapping" or (new and new <= flapping):
        return "flapping"
    return "firing"


@dataclass
class CycleWrites:
    """Everything one cycle writes, applied in one transaction at its end."""

    timers: list[tuple] = field(default_factory=list)
    log: list[tuple] = field(default_factory=list)
    drop_members: list[tuple] = field(default_factory=list)
    drop_groups: list[str] = field(default_factory=list)
    reset_log: list[str] = field(default_factory=list)  # groups whose receiver changed
    marks: dict[int, dict] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    notices: list[tuple] = field(default_factory=list)  # (notification, [(index, notifier)], deadline)
    expire_on_resolve: set[str] = field(default_factory=set)
    suppressed: dict[str, int] = field(default_factory=dict)

    def mark(self, incident, now, **values):
        self.marks.setdefault(incident.id, {}).update(values)

    def event(self, incident, now, event, **detail):
        self.events.append(Event(incident.id, incident.fingerprint, now, event, detail))


class GroupFlush:
    """Flushes due groups: one cycle of Alertmanager's notification pipeline.

    `routes_by_id`: the route tree's nodes by id; `integrations`: receiver -> [(index,
    notifier type, send_resolved)]; `time_muted(route_config, now)`: why a route is muted
    by its time intervals (or None); `deadline(receiver)`: the receiver's delivery deadline;
    `external_url`: where alertd's pages are, for the notices' links.
    """

    def __init__(self, routes_by_id: dict, integrations: dict, time_muted, deadline, *,
                 external_url: str = "", log=None):
        self.routes_by_id, self.integrations = routes_by_id, integrations
        self.time_muted, self.deadline = time_muted, deadline
        self.external_url, self.log = external_url, log

    def run(self, groups, members: dict[str, list[Member]], incidents: dict, log: dict,
            silences, inhibitor, now: float) -> CycleWrites:
        w = CycleWrites()
        for g in groups:
            route = self.routes_by_id.get(g.route_id)
            if route is None:
                continue  # handled by the router (re-routed after a reload)
            self._flush_group(g, route, members.get(g.key, []), incidents, log, silences, inhibitor, now, w)
        forget_label_views()
        return w

    def _mute_marks(self, inc, silences, inhibitor, now, w: CycleWrites) -> bool:
        sil = [s.id for s in silences if s.matches(alert_labels(inc))]
        inh = inhibitor.inhibited_by(inc) if inhibitor is not None else []
        if inc.state != "resolved":
            for name, new, old in (("silenced", sil, inc.silenced_by), ("inhibited", inh, inc.inhibited_by)):
                if bool(new) != bool(old):
                    w.event(inc, now, name if new else f"un{name}", by=new or old)
            if sil != inc.silenced_by or inh != inc.inhibited_by:
                w.mark(inc, now, silenced_by=sil, inhibited_by=inh)
        elif sil:
            w.expire_on_resolve.update(sil)
        inc.silenced_by, inc.inhibited_by = sil, inh
        return bool(sil or inh)

    def _suppress(self, inc, reason: str, now: float, w: CycleWrites, kind: str) -> None:
        if inc.suppressed != reason:
            inc.suppressed = reason
            w.mark(inc, now, suppressed=reason)
            w.event(inc, now, "suppressed", reason=reason)
            w.suppressed[kind] = w.suppressed.get(kind, 0) + 1

    def _flush_group(self, g, route, members, incidents, log, silences, inhibitor, now, w: CycleWrites):
        cfg = route.config
        rows = []
        for m in members:
            inc = incidents.get(m.incident_id)
            if inc is None:
                w.drop_members.append((g.key, m.fingerprint, m.incident_id))
                continue
            rows.append((m, inc, self._mute_marks(inc, silences, inhibitor, now, w)))
        if not rows:
            w.drop_groups.append(g.key)
            return
        time_muted = self.time_muted(cfg, now)
        sent = False
        if time_muted:
            for m, inc, muted in rows:
                if m.state in ACTIVE and inc.notified_at is None and not muted:
                    self._suppress(inc, time_muted, now, w, "time_interval")
        else:
            sent = self._notify(g, route, rows, log, now, w)
        for m, inc, muted in rows:
            if muted and inc.notified_at is None and (m.state in ACTIVE or inc.suppressed is None):
                reason = (f"silenced by {', '.join(inc.silenced_by)}" if inc.silenced_by
                          else f"inhibited by {', '.join(inc.inhibited_by)}")
                self._suppress(inc, reason, now, w, "silenced" if inc.silenced_by else "inhibited")
        # the receiver is recorded too: after a reload that changed it, the log starts afresh once
        w.timers.append((now + cfg.group_interval, now, g.flushes + int(sent),
                         g.receiver if time_muted else cfg.receiver, g.key))
        if time_muted:
            return  # resolved members wait for the end of the mute window (their notice is due)
        for m, inc, muted in rows:
            if m.state == "resolved":
                if inc.notified_at is None and inc.suppressed is None and not muted:
                    self._suppress(inc, "resolved before its group's first notice (group_wait)", now, w,
                                   "resolved_early")
                w.drop_members.append((g.key, m.fingerprint, m.incident_id))
        if all(m.state == "resolved" for m, _, _ in rows):
            w.drop_groups.append(g.key)

    def _notify(self, g, route, rows, log, now, w: CycleWrites) -> bool:
        cfg = route.config
        receiver = cfg.receiver
        live = [(m, inc) for m, inc, muted in rows if not muted]
        if not live:
            # Alertmanager: the mute stages left nothing, so the pipeline stops here and the
            # notification log keeps what the receiver was told (a silence or inhibition that
            # ends later is no news to it: the alert is sent again at repeat_interval)
            return False
        firing = {m.fingerprint for m, _ in live if m.state in ACTIVE}
        flapping = {m.fingerprint for m, _ in live if m.state == "flapping"}
        # an alert that resolved and fired again since the last flush has two members: it fires
        resolved = {m.fingerprint for m, _ in live if m.state == "resolved"} - firing
        unacked = any(m.state in ACTIVE and inc.acknowledged_at is None for m, inc in live)
        integrations = self.integrations.get(receiver, [])
        if not integrations:
            for m, inc in live:
                if m.state in ACTIVE and inc.notified_at is None:
                    self._suppress(inc, f'the receiver "{receiver}" has no enabled integration', now, w,
                                   "no_integration")
            return False
        fresh_log = g.receiver != receiver  # a reload gave the route another receiver
        if fresh_log:
            w.reset_log.append(g.key)
        sequence = g.flushes + 1
        deadline = self.deadline(receiver)
        sent = False
        for index, notifier, send_resolved in integrations:
            entry = None if fresh_log else log.get((g.key, index))
            told_resolved = resolved if send_resolved else set()
            reason = needs_update(entry, firing, told_resolved, flapping, cfg.repeat_interval, now, unacked)
            if reason is None:
                continue
            w.log.append((g.key, index, firing, told_resolved, flapping, now))
            # an alert that resolved and fired again is shown once, firing (Alertmanager keeps
            # one alert per label set: the latest)
            tell = [(m, inc) for m, inc in live if m.state in ACTIVE
                    or (send_resolved and m.fingerprint not in firing)]
            shown = [inc for _, inc in tell]
            if not shown or (not firing and not send_resolved):
                continue  # Alertmanager: the log is updated, nothing is sent
            kind = notice_kind(reason, entry, firing, flapping)
            key = idempotency_key(group_fingerprint(g.key, g.created_at), kind, sequence)
            note = build_notification(receiver, kind, key, shown, am_group_key(route.key, g.labels),
                                      g.labels, now, external_url=self.external_url, log=self.log)
            w.notices.append((note, [(index, notifier)], deadline, reason))
            sent = True
            detail = SharedDetail(receiver=receiver, kind=kind, reason=reason, integration=index)
            for m, inc in tell:
                w.events.append(Event(inc.id, inc.fingerprint, now, "notified", detail))
            for m, inc in live:
                if m.state in ACTIVE and inc.notified_at is None:
                    inc.notified_at = now
                    w.mark(inc, now, notified_at=now)
        told = set() if fresh_log else set().union(
            *(e.firing for e in (log.get((g.key, index)) for index, _, _ in integrations) if e is not None))
        for m, inc in live:
            if m.state in ACTIVE and inc.notified_at is None and m.fingerprint in told:
                # Alertmanager keys alerts by labels: the receiver was told this alert fires,
                # and it resolved and fired again between two flushes, so there is no news.
                self._suppress(inc, "its alert was already notified as firing (it resolved and fired "
                                    "again between two group flushes)", now, w, "already_notified")
        return sent
