"""Alertmanager's silence endpoints, for `amtool silence add|query|expire|update` and Grafana.

    GET    /api/v2/silences            ?filter=<matcher>...  every silence, Alertmanager's order
    POST   /api/v2/silences            create (or, with "id", update) -> {"silenceID": ...}
    GET    /api/v2/silence/{id}        one silence
    DELETE /api/v2/silence/{id}        expire it

They act through `SilenceService`, the same code as `alertd silence` and /api/v1/silences,
so a silence made with amtool is listed by `alertd silence list` and mutes incidents at the
next flush. Writes need the token (or basic auth); errors answer Alertmanager's status codes
with one sentence (a JSON string, as Alertmanager answers them).
"""

from __future__ import annotations

from .. import jsontext
from ..matchers import Matcher
from ..render.view import fmt_iso
from ..routing.silences import Silence, SilenceError, SilenceService
from .am_alerts import am_json, filter_matchers
from .am_parse import AmError, parse_time
from .server import HttpError, Request, Response

_PRIORITY = {"active": 2, "pending": 1, "expired": 0}


def gettable(silence: Silence, now: float) -> dict:
    """A silence as Alertmanager's `gettableSilence`."""
    return {
        "id": silence.id, "status": {"state": silence.state(now)}, "updatedAt": fmt_iso(silence.updated_at),
        "comment": silence.comment, "createdBy": silence.created_by, "endsAt": fmt_iso(silence.ends_at),
        "matchers": [{"isEqual": m.op in ("=", "=~"), "isRegex": m.op in ("=~", "!~"), "name": m.name,
                      "value": m.value} for m in silence.matchers],
        "startsAt": fmt_iso(silence.starts_at),
    }


def _sort_key(item: dict):
    """Active, then pending (soonest end first), then expired (latest end first)."""
    state = item["status"]["state"]
    end = item["endsAt"]
    return (-_PRIORITY[state], end if state != "expired" else "", "" if state != "expired" else _desc(end))


def _desc(text: str) -> str:
    return "".join(chr(0x10FFFF - ord(c)) for c in text)


def _matchers(raw) -> tuple[Matcher, ...]:
    if not isinstance(raw, list) or not raw:
        raise AmError(400, 'the silence needs "matchers": a list such as [{"name": "alertname", '
                           '"value": "HighCPU", "isRegex": false}]', plain=True)
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) \
                or not isinstance(item.get("value"), str) or not isinstance(item.get("isRegex"), bool):
            raise AmError(400, f"matchers[{i}] needs a string name and value and a boolean isRegex",
                          plain=True)
        equal = item.get("isEqual", True)
        if not isinstance(equal, bool):
            raise AmError(400, f"matchers[{i}].isEqual must be true or false", plain=True)
        op = ("=~" if equal else "!~") if item["isRegex"] else ("=" if equal else "!=")
        try:
            out.append(Matcher.make(item["name"], op, item["value"]))
        except ValueError as exc:
            raise AmError(400, f"matchers[{i}]: {exc}", plain=True) from None
    return tuple(out)


class SilencesApi:
    """The handlers; `state` is the daemon's AppState."""

    def __init__(self, state, authorize):
        self.state, self.authorize = state, authorize

    def _service(self) -> SilenceService:
        return SilenceService(self.state.open_store(), self.state.clock)

    def list(self, request: Request) -> Response:
        matchers = filter_matchers(request)
        now = self.state.clock.now()
        out = []
        for silence in self._service().list(include_expired=True):
            values = {m.name: m.value for m in silence.matchers}
            if all(_filter_matches(m, values) for m in matchers):
                out.append(gettable(silence, now))
        out.sort(key=_sort_key)
        return am_json(out)

    def get(self, request: Request) -> Response:
        try:
            silence = self._service().get(request.params["ident"])
        except SilenceError:
            return am_json(f'no silence has the id "{request.params["ident"][:40]}"', 404)
        return am_json(gettable(silence, self.state.clock.now()))

    def post(self, request: Request) -> Response:
        self.authorize(request)
        try:
            return self._post(request)
        except AmError as exc:
            return am_json(exc.message if exc.plain else {"code": exc.status, "message": exc.message}, exc.status)

    def _post(self, request: Request) -> Response:
        try:
            body = jsontext.loads(request.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise AmError(400, f"the body is not valid JSON ({exc}); post a silence object") from None
        if not isinstance(body, dict):
            raise AmError(400, "the body must be a JSON object with matchers, startsAt, endsAt, createdBy "
                               "and comment")
        for key in ("startsAt", "endsAt", "createdBy", "comment"):
            if key not in body:
                raise AmError(422, f'the silence has no "{key}"; send matchers, startsAt, endsAt, '
                                   "createdBy and comment")
        for key in ("createdBy", "comment"):
            if not isinstance(body[key], str):
                raise AmError(400, f'"{key}" must be a string')
        matchers = _matchers(body.get("matchers"))
        now = self.state.clock.now()
        starts, ends = parse_time(body["startsAt"], "startsAt"), parse_time(body["endsAt"], "endsAt")
        if starts is None or ends is None:
            raise AmError(400, "startsAt and endsAt must be set", plain=True)
        starts = max(starts, now)  # Alertmanager starts a silence of the past now
        service = self._service()
        ident = body.get("id") or ""
        try:
            if ident:
                silence = service.update(str(ident), matchers, starts_at=starts, ends_at=ends,
                                         author=body["createdBy"], comment=body["comment"])
            else:
                silence = service.add(matchers, starts_at=starts, ends_at=ends, author=body["createdBy"],
                                      comment=body["comment"])
        except SilenceError as exc:
            if str(exc).startswith("no silence"):
                return am_json(str(exc), 404)
            raise AmError(400, str(exc), plain=True) from None
        self.state.log.info("silence_added", silence=silence.id, matchers=[str(m) for m in silence.matchers],
                            by=silence.created_by, peer=request.peer, api="v2")
        self.state.changed()
        return am_json({"silenceID": silence.id})

    def delete(self, request: Request) -> Response:
        self.authorize(request)
        service = self._service()
        try:
            silence = service.expire(request.params["ident"])
        except SilenceError as exc:
            if str(exc).startswith("no silence"):
                return am_json(str(exc), 404)
            return am_json(str(exc), 500)  # Alertmanager: an expired silence cannot expire again
        self.state.log.info("silence_expired", silence=silence.id, peer=request.peer, api="v2")
        self.state.changed()
        return Response(200, b"", "application/json")


def _filter_matches(matcher: Matcher, values: dict[str, str]) -> bool:
    """Alertmanager's filter of silences: a matcher is tested against the silence's matcher
    values by name; an empty filter value tolerates an absent name."""
    present = matcher.name in values
    if matcher.value == "" and (present if matcher.op in ("!=", "!~") else not present):
        return True
    return matcher.matches(values)


__all__ = ["SilencesApi", "gettable", "HttpError"]
