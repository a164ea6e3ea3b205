"""What people do to incidents: acknowledge, un-acknowledge, resolve by hand.

The one place these actions are carried out, for the CLI and the HTTP API alike. They write
only the columns they own (alertd/store/incidents.py), record history, and bump a counter
the running daemon watches (`alertd.store.incidents.ACTIONS_KEY`), so a resolve done from another
process takes effect in the daemon's state machine at its next tick.

- Acknowledge: the incident stays open and in its group; repeat notices stop while every
  firing incident of the group is acknowledged; new incidents and the resolve notice are
  still sent.
- Resolve: the incident is closed now ("manual"); its groups send the resolved notice as
  usual. If the series is still anomalous, a new incident opens (and waits `for` again).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..model import Incident
from ..render.annotations import render_annotations
from ..store.history import Event
from ..store.incidents import ACTIONS_KEY


class ActionError(ValueError):
    """The action cannot be done; the message is one sentence saying why and what to do."""


@dataclass(frozen=True)
class ActionResult:
    incident: Incident
    changed: bool
    message: str


class IncidentActions:
    """Acknowledge, un-acknowledge and resolve incidents in the store."""

    def __init__(self, store, clock):
        self.store, self.clock = store, clock

    def find(self, ident) -> Incident:
        """An incident by id or fingerprint (the newest of it); ActionError if unknown."""
        text = str(ident).strip().lstrip("#")
        incident = self.store.incidents.get(text) if text else None
        if incident is None:
            what = f"the id #{text}" if text.isdigit() else f'the fingerprint "{text}"'
            raise ActionError(f"no incident has {what}; see `alertd incidents list --all`")
        return incident

    def detail(self, incident: Incident) -> dict:
        """An incident with its groups, history and notifications (for `show` and the API);
        its annotations rendered (`alertd.render.annotations`)."""
        notices = [r for r in self.store.outbox.rows(newest_first=True, limit=500)
                   if f'"{incident.fingerprint}"' in r["payload"]]
        shown = incident.as_dict()
        shown["annotations"] = render_annotations(incident)  # as notices show them
        return {"incident": shown, "groups": self.store.groups.groups_of(incident.fingerprint),
                "history": [e._asdict() for e in self.store.history.of(incident.id)],
                "notifications": [{k: v for k, v in r.items() if k != "payload"} for r in notices]}

    def _bump(self) -> None:
        self.store.set_kv(ACTIONS_KEY, int(self.store.get_kv(ACTIONS_KEY, 0)) + 1)

    def acknowledge(self, ident, *, by: str, comment: str = "") -> ActionResult:
        incident = self.find(ident)
        if incident.state == "resolved":
            raise ActionError(f"incident #{incident.id} is already resolved; there is nothing to acknowledge")
        if incident.acknowledged:
            return ActionResult(incident, False, f"incident #{incident.id} was already acknowledged by "
                                                 f"{incident.acknowledged_by}")
        now = self.clock.now()
        with self.store.atomic():
            self.store.incidents.mark(incident.id, acknowledged_at=now, acknowledged_by=by,
                                      ack_comment=comment or None)
            self.store.history.add([Event(incident.id, incident.fingerprint, now, "acknowledged",
                                          {"comment": comment} if comment else {}, by)])
            self._bump()
        return ActionResult(self.find(incident.id), True, f"incident #{incident.id} acknowledged by {by}")

    def unacknowledge(self, ident, *, by: str) -> ActionResult:
        incident = self.find(ident)
        if incident.state == "resolved":
            raise ActionError(f"incident #{incident.id} is already resolved; an acknowledgement only matters while "
                              "an incident is open (it holds back repeats), so there is nothing to undo")
        if not incident.acknowledged:
            return ActionResult(incident, False, f"incident #{incident.id} is not acknowledged")
        now = self.clock.now()
        with self.store.atomic():
            self.store.incidents.mark(incident.id, acknowledged_at=None, acknowledged_by=None, ack_comment=None)
            self.store.history.add([Event(incident.id, incident.fingerprint, now, "unacknowledged", {}, by)])
            self._bump()
        return ActionResult(self.find(incident.id), True,
                            f"incident #{incident.id} is no longer acknowledged; repeat notices resume")

    def resolve(self, ident, *, by: str, comment: str = "") -> ActionResult:
        incident = self.find(ident)
        if incident.state == "resolved":
            return ActionResult(incident, False, f"incident #{incident.id} is already resolved")
        now = self.clock.now()
        with self.store.atomic():
            self.store.incidents.resolve_by_hand(incident.id, now, by)
            self.store.groups.resolve_member(incident.fingerprint, incident.id, now)
            self.store.history.add([Event(incident.id, incident.fingerprint, now, "resolved",
                                          {"resolution": "manual", **({"comment": comment} if comment else {})},
                                          by)])
            self._bump()
        return ActionResult(self.find(incident.id), True, f"incident #{incident.id} resolved by {by}")
