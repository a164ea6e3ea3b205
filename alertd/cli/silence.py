"""`alertd silence add|list|expire`: mute notifications of matching incidents for a while.

Matchers are written as in Alertmanager's amtool:

    alertd silence add 'rule=payment_success_drop' 'provider=~"adyen|stripe"' \\
        --for 2h --comment "provider maintenance"
    alertd silence add --incident 42 --for 30m      # exactly that incident's labels
    alertd silence list [--all] [--json]
    alertd silence extend ID --for 2h               # or --until TIME; expire ID... ends them now
    alertd silence expire 3f2a9c1e
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime

from ..clock import SystemClock
from ..durations import parse_duration
from ..matchers import Matcher
from .common import CommandError, add_config_arg, add_store_arg, open_store
from .output import ago, print_json, when, whoami

NAME = "silence"
HELP = "add, list, extend or expire silences (matchers as in Alertmanager)"


def configure(parser) -> None:
    add_config_arg(parser)
    add_store_arg(parser)
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = sub.add_parser("add", help="add a silence")
    add.add_argument("matchers", nargs="*", help="label matchers: name=value, name!=value, "
                                                  'name=~"regex", name!~"regex"')
    add.add_argument("--incident", help="silence exactly this incident's labels (id or fingerprint)")
    add.add_argument("--for", dest="duration", help="how long, e.g. 2h (default 1h unless --until)")
    add.add_argument("--until", help="when it ends: an ISO time such as 2025-06-01T18:00 (local time) or with +02:00")
    add.add_argument("--start", help="when it starts (default: now), ISO time")
    add.add_argument("--comment", "-m", default="", help="why (shown with the silence)")
    add.add_argument("--author", "-a", default=None, help="who (default: $USER)")
    add.add_argument("--expire-on-resolve", action="store_true",
                     help="end the silence once none of the incidents it matches is open")
    lst = sub.add_parser("list", help="active and pending silences (all with --all)")
    lst.add_argument("--all", action="store_true", help="include expired silences")
    exp = sub.add_parser("expire", help="end silences now")
    exp.add_argument("ids", nargs="+", help="silence ids (or unique prefixes of at least 4 characters)")
    ext = sub.add_parser("extend", help="move a silence's end: --for 2h (from now) or --until TIME")
    ext.add_argument("id", help="the silence id (or a unique prefix of at least 4 characters)")
    ext.add_argument("--for", dest="duration", help="end this long from now, e.g. 2h")
    ext.add_argument("--until", help="end at this ISO time")
    ext.add_argument("--comment", "-m", default=None, help="a new comment")
    for p in (exp, ext):
        p.add_argument("--by", default=None, help="who (default: $USER)")
    for p in (add, lst, exp, ext):
        p.add_argument("--json", action="store_true", help="print JSON")
        p.add_argument("-c", "--config", default=argparse.SUPPRESS, help="the config file")
        p.add_argument("--store", default=argparse.SUPPRESS, help="the SQLite store")


def run(args) -> int:
    from ..routing.silences import SilenceError, SilenceService

    store = open_store(args)
    try:
        service = SilenceService(store, SystemClock())
        return {"add": _add, "list": _list, "expire": _expire, "extend": _extend}[args.action](args, store, service)
    except SilenceError as exc:
        raise CommandError(str(exc)) from None
    finally:
        store.close()


def _time(text: str, option: str) -> float:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise CommandError(f'{option} "{text}" is not a time; write an ISO time such as '
                           "2025-06-01T18:00 (local time) or 2025-06-01T18:00+02:00") from None
    return value.timestamp() if value.tzinfo else value.astimezone().timestamp()


def _add(args, store, service) -> int:
    from ..incidents.actions import ActionError, IncidentActions

    matchers: list = list(args.matchers)
    if args.incident:
        try:
            incident = IncidentActions(store, service.clock).find(args.incident)
        except ActionError as exc:
            raise CommandError(str(exc)) from None
        if args.expire_on_resolve and incident.state == "resolved":
            raise CommandError(f"incident #{incident.id} is already resolved, so --expire-on-resolve would not end "
                               "with it (the silence would wait for the next incident of these labels to resolve); "
                               "leave it out and give --for or --until to mute its labels for a while")
        matchers = [Matcher.make("rule", "=", incident.rule),
                    *(Matcher.make(k, "=", v) for k, v in sorted(incident.labels.items()))] + \
            list(_parse(matchers))
    if not matchers:
        raise CommandError('give at least one matcher, such as rule=payment_success_drop, or --incident ID')
    duration = None
    if args.duration is not None:
        try:
            duration = parse_duration(args.duration)
        except ValueError:
            raise CommandError(f'--for "{args.duration}" is not a duration; write a value such as 30m or 2h') from None
    ends_at = _time(args.until, "--until") if args.until else None
    if duration is None and ends_at is None:
        duration = 3600.0
    starts_at = _time(args.start, "--start") if args.start else None
    silence = service.add(_parse(matchers), duration=duration, ends_at=ends_at, starts_at=starts_at,
                          author=args.author or whoami(), comment=args.comment,
                          expire_on_resolve=args.expire_on_resolve)
    matched = service.open_incidents_matching(silence)
    _hint_unknown_rules(args, store, silence, matched)
    if silence.expire_on_resolve and not matched:
        print("note: the silence matches no open incident, so --expire-on-resolve ends it only when the next "
              f"matching incident resolves (or at {when(silence.ends_at)} UTC)", file=sys.stderr)
    if args.json:
        print_json({**silence.as_dict(service.clock.now()), "open_incidents_matched": matched})
        return 0
    print(silence.id)
    print(f"silences {{{', '.join(str(m) for m in silence.matchers)}}} until {when(silence.ends_at)} UTC; "
          f"it matches {len(matched)} open incident{'s' if len(matched) != 1 else ''}"
          + (f" ({', '.join(f'#{i}' for i in matched[:10])}{', ...' if len(matched) > 10 else ''})" if matched else ""))
    return 0


def _hint_unknown_rules(args, store, silence, matched) -> None:
    """A note on stderr when `rule=NAME` names no rule the config or the store knows: the
    silence is kept (a rule may come later), but a typo should not pass unseen."""
    if matched:
        return
    named = [m.value for m in silence.matchers if m.name in ("rule", "alertname") and m.op == "="]
    if not named:
        return
    known = set(store.incidents.rule_names())
    try:
        from .common import load

        known |= {r.name for r in load(args)[0].rules}
    except Exception:  # no config at hand (only --store): the store's rules must do
        pass
    from ..config.schema import suggest

    for name in named:
        if name not in known and not name.startswith("alertd_"):
            print(f'note: no rule is named "{name}" in {args.config} or the store{suggest(name, known)} '
                  "The silence was added; it mutes nothing until such a rule fires.", file=sys.stderr)


def _parse(matchers) -> tuple:
    from ..routing.silences import parse_silence_matchers
    texts = [m for m in matchers if isinstance(m, str)]
    ready = [m for m in matchers if isinstance(m, Matcher)]
    try:
        return tuple(ready) + parse_silence_matchers(texts)
    except ValueError as exc:
        raise CommandError(str(exc)) from None


def _list(args, store, service) -> int:
    now = service.clock.now()
    silences = service.list(include_expired=args.all)
    if args.json:
        print_json([s.as_dict(now) for s in silences])
        return 0
    if not silences:
        print("no silences" if args.all else "no active or pending silences")
        return 0
    for s in silences:
        state = s.state(now)
        timing = (f"ends {ago(s.ends_at, now)}" if state != "pending" else f"starts {ago(s.starts_at, now)}")
        print(f"{s.id[:8]}  {state:<8} {{{', '.join(str(m) for m in s.matchers)}}}  {timing}  by {s.created_by}"
              f"{'  expire-on-resolve' if s.expire_on_resolve else ''}{f'  # {s.comment}' if s.comment else ''}")
    return 0


def _expire(args, store, service) -> int:
    from ..routing.silences import SilenceError

    now = service.clock.now()
    for silence in [service.get(ident) for ident in args.ids]:  # check them all before changing any
        if silence.state(now) == "expired":
            raise SilenceError(f"the silence {silence.id} already expired; nothing was changed")
    expired = [service.expire(ident, by=args.by or whoami()) for ident in args.ids]
    if args.json:
        print_json([s.as_dict(service.clock.now()) for s in expired])
    else:
        for s in expired:
            print(f"expired {s.id}")
    return 0


def _extend(args, store, service: SilenceService) -> int:
    if (args.duration is None) == (args.until is None):
        raise CommandError("say when the silence ends: --for 2h (from now) or --until TIME")
    if args.duration is not None:
        try:
            ends_at = service.clock.now() + parse_duration(args.duration)
        except ValueError:
            raise CommandError(f'--for "{args.duration}" is not a duration; write a value such as 30m or 2h') from None
    else:
        ends_at = _time(args.until, "--until")
    silence = service.extend(args.id, ends_at=ends_at, by=args.by or whoami(), comment=args.comment)
    if args.json:
        print_json(silence.as_dict(service.clock.now()))
    else:
        print(f"silence {silence.id} now ends {ago(silence.ends_at, service.clock.now())}")
    return 0
