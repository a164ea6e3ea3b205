"""Routing: incidents into Alertmanager-style groups, and groups into outbox notices.

`Router.route(transitions, now)` puts each firing, flapping or resolved incident into the
group of every route that takes it (the route tree, alertd/routing/tree.py) and creates
groups that do not exist yet, their first flush `group_wait` from now. `Router.flush_due(now)`
runs the notification pipeline for the groups whose timer is due (alertd/routing/flush.py):
silences, inhibition, time intervals, the notification log, and the outbox.

All of a router's state is in the store (groups, their timers, members, notification log,
silences), so a Router built after a reload or a restart from an unchanged route carries on
with the same timers. A group whose route no longer exists is re-routed through the new tree.
"""

from __future__ import annotations

from ..config.time_intervals import interval_contains
from ..incidents.tracker import Transition
from ..jsontext import dumps
from ..store.history import Event
from ..store.incidents import ACTIONS_KEY
from .flush import GroupFlush
from .inhibit import Inhibitor
from .notices import external_url_of, member_status, render_annotation  # noqa: F401 (re-exported)
from .silences import SilenceCache, SilenceService
from .tree import alert_labels, compile_tree, group_key, routing_labels


def match_route(route, labels: dict[str, str]) -> list[str]:
    """Receivers for `labels` under a RouteConfig tree, Alertmanager-style."""
    return [node.config.receiver for node in compile_tree(route).match(labels)]


class Router:
    """Groups incidents per route and flushes due groups into the outbox."""

    def __init__(self, config, store, clock, log=None, metrics=None, integrations=None):
        self.config, self.store, self.clock, self.log, self.metrics = config, store, clock, log, metrics
        self.tree = compile_tree(config.routes) if config.routes is not None else None
        self.routes_by_id = {node.id: node for node in self.tree.walk()} if self.tree else {}
        self.integrations = integrations if integrations is not None else {
            name: [(i, n.type, n.send_resolved) for i, n in enumerate(items) if n.enabled]
            for name, items in config.receivers.items()}
        self.silences = SilenceCache(SilenceService(store, clock))
        self._flush = GroupFlush(self.routes_by_id, self.integrations, self.time_muted, self.deadline,
                                 external_url=external_url_of(config), log=log)
        self._match_cache: dict[tuple, list] = {}
        self._epochs: dict[str, tuple] = {}  # group key -> silences/inhibition at its last evaluation
        # Incidents of group members by id: the state machine's own objects (always current),
        # or loaded from the store; dropped when an action outside this process changes them.
        self._incidents: dict[int, object] = {}
        self._actions_seen = store.get_kv(ACTIONS_KEY, 0)
        self._reroute_orphans()

    def _reroute_orphans(self) -> None:
        """After a reload: groups of routes that no longer exist are re-routed right away."""
        orphans = [g for g in self.store.groups.all() if g.route_id not in self.routes_by_id]
        if orphans:
            with self.store.atomic():
                self._reroute(orphans, self.clock.now())

    # -- what the flush is handed -------------------------------------------------------------
    def deadline(self, receiver: str) -> float:
        return self.config.delivery(receiver).deadline

    def time_muted(self, route_config, now: float) -> str | None:
        """Why the route is muted now by its time intervals, or None."""
        for name in route_config.mute_time_intervals:
            if interval_contains(self.config.time_intervals.get(name, ()), now):
                return f"muted by the time interval {name}"
        active = route_config.active_time_intervals
        if active and not any(interval_contains(self.config.time_intervals.get(n, ()), now) for n in active):
            return f"outside the active time intervals {', '.join(active)}"
        return None

    # -- incidents into groups ---------------------------------------------------------------
    def _routes_for(self, labels: dict[str, str]):
        if self.tree is None:  # a config without receivers: nothing to notify
            return []
        key = tuple(sorted(labels.items()))
        routes = self._match_cache.get(key)
        if routes is None:
            if len(self._match_cache) > 50_000:
                self._match_cache.clear()
            seen, routes = set(), []
            for node in self.tree.match(labels):
                if node.id not in seen:
                    seen.add(node.id)
                    routes.append(node)
            self._match_cache[key] = routes
        return routes

    def route(self, transitions: list[Transition], now: float, poll: tuple[float, set] | None = None) -> int:
        """Put the incidents of these transitions into their groups; returns how many groups.

        `poll` is (when the poll's tick began, the groups its earlier slices routed), for a
        tick routed slice by slice: a group an earlier slice routed and that was flushed
        since flushes again at once, so its new members are told now, as one routing of the
        whole poll would have told them with the others (not a group_interval later)."""
        groups, members, hurry = {}, [], set()
        for transition in transitions:
            incident = transition.incident
            labels = alert_labels(incident)
            for node in self._routes_for(labels):
                grouping = node.group_labels(labels)
                key = group_key(node, grouping)
                if key not in groups:
                    groups[key] = (key, node.id, node.config.receiver, dumps(grouping, sort_keys=True),
                                   now, now + node.config.group_wait)
                members.append((key, incident.fingerprint, incident.id, member_status(incident), now))
                if incident.cause == "posted" and incident.started_at + node.config.group_wait < now:
                    hurry.add(key)  # Alertmanager: an alert older than group_wait flushes at once
        with self.store.atomic():
            self.store.groups.ensure(list(groups.values()))
            self.store.groups.put_members(members)
            if hurry:
                self.store.groups.hurry(sorted(hurry), now)
            if poll is not None:
                since, earlier = poll
                again = sorted(key for key in groups if key in earlier)
                if again:
                    self.store.groups.hurry(again, now, flushed_since=since)
                earlier.update(groups)
        return len(groups)

    def next_flush_at(self) -> float | None:
        """When the earliest group timer fires (None: no groups)."""
        return self.store.groups.next_flush_at()

    # -- groups into the outbox ----------------------------------------------------------------
    def flush_due(self, now: float | None = None) -> int:
        """Flush every due group; returns how many outbox rows were queued."""
        now = self.clock.now() if now is None else now
        groups = self.store.groups.due(now)
        if not groups:
            return 0
        actions = self.store.get_kv(ACTIONS_KEY, 0)
        if actions != self._actions_seen:  # acknowledged or resolved from elsewhere: re-read
            self._actions_seen = actions
            self.forget_incidents()
        with self.store.atomic():
            orphans = [g for g in groups if g.route_id not in self.routes_by_id]
            if orphans:
                self._reroute(orphans, now)
                groups = [g for g in groups if g.route_id in self.routes_by_id]
            inhibitor = (Inhibitor(self.config.inhibit_rules, self.store.incidents.firing())
                         if self.config.inhibit_rules else None)
            silences = self.silences.active(now)
            epoch = (tuple(s.id for s in silences), inhibitor.signature if inhibitor else None)
            summary = self.store.groups.summary([g.key for g in groups])
            busy, quiet = [], []
            for g in groups:
                (quiet if self._quiet(g, summary[g.key], epoch, now) else busy).append(g)
            keys = [g.key for g in busy]
            members = self.store.groups.members(keys)
            log = self.store.groups.log_entries(keys)
            incidents = self._load({m.incident_id for g in busy for m in members[g.key]})
            writes = self._flush.run(busy, members, incidents, log, silences, inhibitor, now)
            writes.timers += [(now + self.routes_by_id[g.route_id].config.group_interval, now, g.flushes, g.receiver, g.key)
                              for g in quiet]
            for g in busy:
                self._epochs[g.key] = epoch
            queued = self.store.outbox.enqueue_many([(note, targets, deadline)
                                                     for note, targets, deadline, _ in writes.notices], now)
            for note, targets, deadline, reason in writes.notices:
                if self.log is not None:
                    self.log.info("group_notified", receiver=note.receiver, kind=note.kind, group=note.group_key,
                                  incidents=len(note.incidents), reason=reason, key=note.idempotency_key)
            self.store.incidents.mark_many(writes.marks)
            self.store.history.add(writes.events)
            self.store.groups.write_flush(timers=writes.timers, log=writes.log, reset_log=writes.reset_log,
                                          drop_members=writes.drop_members, drop_groups=writes.drop_groups)
            for _, _, incident_id in writes.drop_members:
                self._incidents.pop(incident_id, None)
            for key in writes.drop_groups:  # (a group of pods' labels that went: its key with it)
                self._epochs.pop(key, None)
            self._expire_on_resolve(writes.expire_on_resolve, now)
        if self.metrics is not None:
            for kind, n in writes.suppressed.items():
                self.metrics.incidents_suppressed.labels(kind).inc(n)
        return queued

    def remember(self, incidents) -> None:
        """Keep the state machine's incident objects for flushes (they stay current).

        An incident that resolved without firing (a blip shorter than `for`), or without a
        route to notify, never joins a group, so no flush would drop it: it is let go here, or
        every such blip stays in memory for the daemon's lifetime."""
        for incident in incidents:
            if incident.id is None:
                continue
            if incident.state == "resolved" and (incident.fired_at is None or self.tree is None):
                self._incidents.pop(incident.id, None)
            else:
                self._incidents[incident.id] = incident

    def forget_incidents(self) -> None:
        """Drop remembered incidents (an action in another process may have changed them)."""
        self._incidents.clear()

    def _load(self, ids: set[int]) -> dict:
        known = self._incidents
        missing = [i for i in ids if i not in known]
        if missing:
            known.update(self.store.incidents.by_ids(missing))
        return {i: known[i] for i in ids if i in known}

    def _quiet(self, g, summary, epoch, now: float) -> bool:
        """Whether flushing this group now could only repeat its last evaluation: no member
        changed, silences and inhibiting alerts are as they were, no time interval applies,
        nothing resolved waits to be told and no repeat is due. Such a group just moves its
        timer, without loading its members or incidents."""
        cfg = self.routes_by_id[g.route_id].config
        if (g.changed or self._epochs.get(g.key) != epoch or g.receiver != cfg.receiver
                or cfg.mute_time_intervals or cfg.active_time_intervals):
            return False
        members, resolved, oldest_notice = summary
        if not members or resolved:
            return False
        return oldest_notice is None or now - oldest_notice < cfg.repeat_interval

    def _reroute(self, orphans, now: float) -> None:
        """Groups of routes that a reload removed: move their members into the new tree."""
        members = self.store.groups.members([g.key for g in orphans])
        incidents = self.store.incidents.by_ids({m.incident_id for ms in members.values() for m in ms})
        moved = [Transition(m.state, incidents[m.incident_id])
                 for ms in members.values() for m in ms if m.incident_id in incidents]
        for g in orphans:
            self.store.groups.delete_group(g.key)
            self._epochs.pop(g.key, None)
        if moved:
            self.route(moved, now)
        if self.log is not None:
            self.log.info("groups_rerouted", groups=len(orphans), incidents=len(moved))

    def _expire_on_resolve(self, silence_ids: set[str], now: float) -> None:
        """Expire `expire_on_resolve` silences that no open incident matches any more."""
        if not silence_ids:
            return
        service = self.silences.service
        open_labels = None
        for silence in self.silences.active(now):
            if silence.id not in silence_ids or not silence.expire_on_resolve:
                continue
            if open_labels is None:
                open_labels = [routing_labels(labels, rule, sev)
                               for _, labels, rule, sev in self.store.incidents.open_labels()]
            if not any(silence.matches(labels) for labels in open_labels):
                service.expire(silence.id, reason="expired on resolve")
                self.store.history.add([Event(None, "", now, "silence_expired", {"silence": silence.id})])
