"""`alertd incidents [list|show|ack|unack|resolve]`: look at incidents and act on them.

Works on the store directly (the daemon need not run; when it does, it picks actions up at
its next tick). `alertd incidents` alone is `alertd incidents list`, for scripts.
"""

from __future__ import annotations

import argparse

from ..clock import SystemClock
from ..render.annotations import render_annotations
from .common import CommandError, add_config_arg, add_store_arg, open_store
from .output import ago, incident_status, labels_text, print_json, when, whoami

NAME = "incidents"
HELP = "list incidents, show one with its history, acknowledge or resolve"


def _list_args(parser, suppress: bool) -> None:
    default = {"default": argparse.SUPPRESS} if suppress else {}
    parser.add_argument("--all", action="store_true", help="include resolved incidents", **default)
    parser.add_argument("--state", choices=["pending", "firing", "resolved"], help="only this state",
                        **default)
    parser.add_argument("--rule", help="only incidents of this rule", **default)
    parser.add_argument("--limit", type=int, help="at most this many (default 100)", **default)


def _json_arg(parser, suppress: bool) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON",
                        **({"default": argparse.SUPPRESS} if suppress else {}))


def configure(parser) -> None:
    add_config_arg(parser)
    add_store_arg(parser)
    _list_args(parser, False)
    _json_arg(parser, False)
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    _list_args(sub.add_parser("list", help="open incidents (or all with --all); the default"), True)
    show = sub.add_parser("show", help="one incident with its history and notifications")
    show.add_argument("incident", help="incident id (#42 or 42) or fingerprint")
    for name, text in (("ack", "acknowledge: stop repeat notices (the resolve is still sent)"),
                       ("unack", "undo an acknowledgement"),
                       ("resolve", "close an incident by hand; its groups send the resolved notice")):
        p = sub.add_parser(name, help=text)
        p.add_argument("incident", help="incident id (#42 or 42) or fingerprint")
        p.add_argument("--by", default=None, help="who is acting (default: $USER)")
        if name != "unack":
            p.add_argument("--comment", "-m", default="", help="a note for the history")
    for p in sub.choices.values():
        _json_arg(p, True)
        _where_args(p)


def _where_args(parser) -> None:
    """-c and --store also after the action (`alertd incidents ack 4 --store x.db`)."""
    parser.add_argument("-c", "--config", default=argparse.SUPPRESS, help="the config file")
    parser.add_argument("--store", default=argparse.SUPPRESS, help="the SQLite store")


def run(args) -> int:
    action = getattr(args, "action", None) or "list"
    store = open_store(args)
    try:
        return {"list": _list, "show": _show, "ack": _act, "unack": _act, "resolve": _act}[action](args, store)
    finally:
        store.close()


def _list(args, store) -> int:
    from ..routing.silences import SilenceCache, SilenceService

    clock = SystemClock()
    incidents = store.incidents.list(include_closed=args.all, limit=args.limit or 100,
                                     state=args.state, rule=args.rule)
    silences = SilenceCache(SilenceService(store, clock)).active(clock.now())
    silenced = {i.id: SilenceCache.matching(silences, i) for i in incidents}
    if args.json:
        print_json([{**i.as_dict(), "annotations": render_annotations(i),
                     "silenced_by": silenced[i.id] if i.state != "resolved" else i.silenced_by}
                    for i in incidents])
        return 0
    if not incidents:
        print("no incidents" if args.all or args.state else "no open incidents")
        return 0
    for i in incidents:
        last = i.last_value if i.last_value is not None else "-"
        print(f"#{i.id:<5} {incident_status(i, silenced[i.id]):<24} {i.severity:<8} {i.rule} "
              f"{{{labels_text(i.labels)}}} since {when(i.started_at)} count={i.count} last={last}  {i.reason}")
    return 0


def _show(args, store) -> int:
    from ..incidents.actions import ActionError, IncidentActions

    actions = IncidentActions(store, SystemClock())
    try:
        incident = actions.find(args.incident)
    except ActionError as exc:
        raise CommandError(str(exc)) from None
    detail = actions.detail(incident)
    if args.json:
        print_json(detail)
        return 0
    history, groups = store.history.of(incident.id), detail["groups"]
    notices = detail["notifications"]
    now = SystemClock().now()
    print(f"incident #{incident.id}  {incident.rule} {{{labels_text(incident.labels)}}}")
    print(f"  state        {incident_status(incident)}  (severity {incident.severity})")
    print(f"  fingerprint  {incident.fingerprint}")
    print(f"  started      {when(incident.started_at)}  fired {when(incident.fired_at)}  "
          f"resolved {when(incident.resolved_at)}{f' ({incident.resolution})' if incident.resolution else ''}")
    print(f"  points       {incident.count} anomalous, last value {incident.last_value}, peak score "
          f"{incident.peak_score}")
    print(f"  reason       {incident.reason}")
    if incident.acknowledged:
        print(f"  acknowledged by {incident.acknowledged_by} {ago(incident.acknowledged_at, now)}"
              f"{f': {incident.ack_comment}' if incident.ack_comment else ''}")
    if incident.suppressed and not incident.notified_at:
        print(f"  not notified {incident.suppressed}")
    for key, value in sorted(render_annotations(incident).items()):
        print(f"  {key:<12} {value}")
    if groups:
        print("  groups       " + "\n               ".join(groups))
    print("history:")
    for e in history:
        detail = " ".join(f"{k}={v}" for k, v in sorted(e.detail.items()))
        print(f"  {when(e.at)}  {e.event:<15} {detail}{f' (by {e.actor})' if e.actor else ''}")
    if notices:
        print("notifications:")
        for r in notices:
            print(f"  {when(r['created_at'])}  {r['kind']:<9} {r['receiver']}/{r['notifier']}#{r['integration']}"
                  f"  {r['status']} after {r['attempts']} attempt(s){'  ' + r['last_error'] if r['last_error'] else ''}")
    return 0


def _act(args, store) -> int:
    from ..incidents.actions import ActionError, IncidentActions

    actions = IncidentActions(store, SystemClock())
    by = args.by or whoami()
    try:
        if args.action == "ack":
            result = actions.acknowledge(args.incident, by=by, comment=args.comment)
        elif args.action == "unack":
            result = actions.unacknowledge(args.incident, by=by)
        else:
            result = actions.resolve(args.incident, by=by, comment=args.comment)
    except ActionError as exc:
        raise CommandError(str(exc)) from None
    if args.json:
        print_json({"changed": result.changed, "message": result.message, "incident": result.incident.as_dict()})
    else:
        print(result.message)
    return 0
