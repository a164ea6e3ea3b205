"""Silences: mute the notifications of matching incidents for a while (Alertmanager's model).

A silence has matchers (`=`, `!=`, `=~`, `!~`, regexes anchored), a start and an end, an
author and a comment, and optionally `expire_on_resolve`: it ends by itself once none of the
incidents it matches is open any more. Silenced incidents are still tracked, stored and
listed (as silenced); only their notifications are held back.

`SilenceService` is the one place silences are added, listed, extended and expired: the CLI,
the HTTP API and the pages all call it. Each of those changes is written into the history of
every open incident the silence matches, with who did it (`silence_added`,
`silence_extended`, `silence_expired`), so an incident's history names the actor of every
change; the flush then records `silenced` / `unsilenced` as the notices are held back or not.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from ..durations import format_duration
from ..matchers import Matcher, parse_matcher, parse_matchers
from ..store.history import Event
from .tree import alert_labels, routing_labels


@dataclass(frozen=True)
class Silence:
    """One silence; `state(now)` is pending (not started), active or expired."""

    id: str
    matchers: tuple[Matcher, ...]
    starts_at: float
    ends_at: float
    created_by: str
    comment: str
    expire_on_resolve: bool = False
    created_at: float = 0.0
    updated_at: float = 0.0

    def state(self, now: float) -> str:
        if now >= self.ends_at:
            return "expired"
        return "pending" if now < self.starts_at else "active"

    def matches(self, labels: dict[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)

    def as_dict(self, now: float | None = None) -> dict:
        data = {"id": self.id, "matchers": [str(m) for m in self.matchers], "starts_at": self.starts_at,
                "ends_at": self.ends_at, "created_by": self.created_by, "comment": self.comment,
                "expire_on_resolve": self.expire_on_resolve, "created_at": self.created_at,
                "updated_at": self.updated_at}
        if now is not None:
            data["state"] = self.state(now)
        return data


class SilenceError(ValueError):
    """A silence request that cannot be carried out; the message is one sentence."""


def _from_row(row: dict) -> Silence:
    matchers = tuple(parse_matcher(text) for text in json.loads(row["matchers"]))
    return Silence(row["id"], matchers, row["starts_at"], row["ends_at"], row["created_by"] or "",
                   row["comment"] or "", bool(row["expire_on_resolve"]), row["created_at"] or 0.0,
                   row["updated_at"] or 0.0)


def parse_silence_matchers(texts) -> tuple[Matcher, ...]:
    """Matchers as written on the command line (`rule=x`, `'provider=~"a|b"'`, `{a="1",b!="2"}`)."""
    out: list[Matcher] = []
    for text in texts:
        text = str(text).strip()
        out += parse_matchers(text) if text.startswith("{") or "," in text else [parse_matcher(text)]
    return tuple(out)


class SilenceService:
    """Add, list, expire and apply silences stored in the store."""

    def __init__(self, store, clock):
        self.store, self.clock = store, clock

    def add(self, matchers, *, duration: float | None = None, ends_at: float | None = None,
            starts_at: float | None = None, author: str = "", comment: str = "",
            expire_on_resolve: bool = False) -> Silence:
        """Validate and store a new silence; raises SilenceError (nothing is stored then)."""
        now = self.clock.now()
        if matchers and isinstance(next(iter(matchers)), str):
            try:
                matchers = parse_silence_matchers(matchers)
            except ValueError as exc:
                raise SilenceError(str(exc)) from None
        matchers = tuple(matchers)
        if not matchers:
            raise SilenceError('a silence needs at least one matcher, such as rule="payment_success_drop"')
        if all(m.matches({}) for m in matchers):
            raise SilenceError("every matcher of this silence also matches a missing label, so it would "
                               "silence everything; add one that names a value, such as rule=\"...\"")
        start = now if starts_at is None else float(starts_at)
        if ends_at is None:
            if duration is None:
                raise SilenceError("say how long the silence lasts: --for 2h or --until TIME")
            if duration <= 0:
                raise SilenceError(f"the duration {format_duration(duration)} is not more than 0s; "
                                   "write a value such as 2h")
            ends_at = start + duration
        if ends_at <= start:
            raise SilenceError("the silence would end before it starts; check --start and --until")
        if ends_at <= now:
            raise SilenceError("the silence would end in the past; check --until")
        silence = Silence(str(uuid.uuid4()), matchers, start, float(ends_at), author or "unknown",
                          comment or "", bool(expire_on_resolve), now, now)
        with self.store.atomic():
            self.store.silences.insert({
                "id": silence.id, "matchers": json.dumps([str(m) for m in matchers]),
                "starts_at": silence.starts_at, "ends_at": silence.ends_at, "created_by": silence.created_by,
                "comment": silence.comment, "expire_on_resolve": int(silence.expire_on_resolve),
                "created_at": now, "updated_at": now})
            self._tell_incidents(silence, "silence_added", silence.created_by,
                                 {"comment": silence.comment, "ends_at": silence.ends_at,
                                  "matchers": [str(m) for m in matchers]})
        return silence

    def _tell_incidents(self, silence: Silence, event: str, actor: str, detail: dict) -> None:
        """Write `event` into the history of every open incident `silence` matches."""
        events = [Event(incident_id, fp, self.clock.now(), event, {"silence": silence.id, **detail}, actor)
                  for incident_id, fp, labels in self._open_matching(silence)]
        self.store.history.add(events)

    def _open_matching(self, silence: Silence) -> list[tuple[int, str, dict]]:
        out = []
        for incident_id, labels, rule, severity in self.store.incidents.open_labels():
            if silence.matches(routing_labels(labels, rule, severity)):
                out.append((incident_id, None, labels))
        if not out:
            return []
        found = self.store.incidents.by_ids([i for i, _, _ in out])
        return [(i, found[i].fingerprint, labels) for i, _, labels in out if i in found]

    def list(self, *, include_expired: bool = False) -> list[Silence]:
        rows = self.store.silences.rows(ending_after=None if include_expired else self.clock.now())
        return [_from_row(r) for r in rows]

    def get(self, ident: str) -> Silence:
        """A silence by id or unique id prefix; SilenceError if none or several match."""
        ident = str(ident).strip()
        rows = self.store.silences.by_prefix(ident) if len(ident) >= 4 else []
        if not rows:
            raise SilenceError(f'no silence has the id "{ident}"; see `alertd silence list --all`')
        if len(rows) > 1:
            raise SilenceError(f'"{ident}" is the start of {len(rows)} silence ids; give more of the id')
        return _from_row(rows[0])

    def expire(self, ident: str, *, reason: str | None = None, by: str = "alertd") -> Silence:
        """End a silence now; SilenceError if it is unknown or already expired."""
        silence = self.get(ident)
        now = self.clock.now()
        if silence.state(now) == "expired":
            raise SilenceError(f"the silence {silence.id} already expired")
        values = {"ends_at": now, "updated_at": now}
        if silence.state(now) == "pending":
            values["starts_at"] = now
        if reason:
            values["comment"] = f"{silence.comment} [{reason}]".strip()
        with self.store.atomic():
            self.store.silences.update(silence.id, values)
            self._tell_incidents(silence, "silence_expired", by, {"reason": reason} if reason else {})
        return self.get(silence.id)

    def extend(self, ident: str, *, ends_at: float, by: str, comment: str | None = None) -> Silence:
        """Move a pending or active silence's end to `ends_at` (later or earlier, but after now
        and its start); SilenceError if it is unknown, expired, or the end is not usable."""
        silence = self.get(ident)
        now = self.clock.now()
        if silence.state(now) == "expired":
            raise SilenceError(f"the silence {silence.id} already expired; add a new one instead")
        if ends_at <= max(now, silence.starts_at):
            raise SilenceError("the new end is not after now and the silence's start; give a later time")
        values = {"ends_at": float(ends_at), "updated_at": now}
        if comment is not None and comment.strip():
            values["comment"] = comment.strip()
        with self.store.atomic():
            self.store.silences.update(silence.id, values)
            self._tell_incidents(silence, "silence_extended", by,
                                 {"ends_at": float(ends_at), "before": silence.ends_at})
        return self.get(silence.id)

    def update(self, ident: str, matchers, *, starts_at: float, ends_at: float, author: str,
               comment: str) -> Silence:
        """Alertmanager's update of a silence by id: in place when only its end, comment or
        author change (and a pending one's start stays ahead), else the old one expires and a
        new one (a new id) takes its place. SilenceError for an unknown id or a bad silence."""
        old = self.get(ident)
        now = self.clock.now()
        matchers = tuple(matchers)
        state = old.state(now)
        in_place = (matchers == old.matchers and state != "expired"
                    and (starts_at == old.starts_at and ends_at > now if state == "active" else starts_at >= now))
        if not in_place:
            new = self.add(matchers, starts_at=starts_at, ends_at=ends_at, author=author, comment=comment)
            if state != "expired":
                self.expire(old.id, by=author)
            return new
        if ends_at <= starts_at:
            raise SilenceError("the silence would end before it starts; check its start and end")
        with self.store.atomic():
            self.store.silences.update(old.id, {"starts_at": starts_at, "ends_at": ends_at, "created_by": author,
                                                "comment": comment, "updated_at": now})
            if ends_at != old.ends_at:
                self._tell_incidents(old, "silence_extended", author, {"ends_at": ends_at, "before": old.ends_at})
        return self.get(old.id)

    def active(self) -> list[Silence]:
        now = self.clock.now()
        return [s for s in self.list() if s.state(now) == "active"]

    def open_incidents_matching(self, silence: Silence) -> list[int]:
        """Ids of open incidents this silence matches (to tell the user what it will mute)."""
        return self.open_matching(silence.matchers)

    def open_matching(self, matchers) -> list[int]:
        """Ids of open incidents all of `matchers` match."""
        out = []
        for incident_id, labels, rule, severity in self.store.incidents.open_labels():
            labels = routing_labels(labels, rule, severity)
            if all(m.matches(labels) for m in matchers):
                out.append(incident_id)
        return out


class SilenceCache:
    """Active silences for the router, re-read only when the silences table changed."""

    def __init__(self, service: SilenceService):
        self.service = service
        self._version = None
        self._all: list[Silence] = []

    def active(self, now: float) -> list[Silence]:
        version = self.service.store.silences.version()
        if version != self._version:
            self._all, self._version = self.service.list(), version
        return [s for s in self._all if s.state(now) == "active"]

    @staticmethod
    def matching(silences: list[Silence], incident) -> list[str]:
        labels = alert_labels(incident)
        return [s.id for s in silences if s.matches(labels)]
