"""`alertd routes [show|test]`: the route tree, and who gets an alert with given labels.

    alertd routes                                  # the tree, as `amtool config routes show`
    alertd routes test rule=payment_success_drop severity=critical provider=stripe
    alertd routes test --tree --expect oncall,console severity=critical

The first line of `test` is amtool's answer (`amtool config routes test`): the receivers,
comma-separated, in the order Alertmanager finds them; then, per route, how the alert is
grouped and its timers. `--expect` exits 1 when the receivers differ (config tests in CI).
"""

from __future__ import annotations

import argparse

from ..durations import format_duration
from ..routing.route_match import matchers_text, matching_routes, parse_labels, tree_lines
from ..routing.tree import compile_tree
from .common import CommandError, add_config_arg, load
from .output import print_json

NAME = "routes"
HELP = "show the route tree, or test which receivers get an alert with given labels"


def configure(parser) -> None:
    add_config_arg(parser)
    parser.add_argument("--json", action="store_true", help="print JSON")
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    show = sub.add_parser("show", help="the route tree (the default)")
    test = sub.add_parser("test", help="which routes and receivers take an alert with these labels")
    test.add_argument("labels", nargs="+", metavar="LABEL", help="name=value, e.g. severity=critical")
    test.add_argument("--tree", action="store_true", help="also draw the routes on the way")
    test.add_argument("--expect", metavar="RECEIVERS",
                      help="comma-separated receivers the alert must reach; exit 1 otherwise")
    for p in (show, test):
        p.add_argument("-c", "--config", default=argparse.SUPPRESS, help="the config file")
        p.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")


def run(args) -> int:
    config, _ = load(args)
    if config.routes is None:
        raise CommandError("the config has no receivers, so there is no route tree; add a receivers section")
    tree = compile_tree(config.routes)
    if getattr(args, "action", None) != "test":
        if args.json:
            print_json(_tree_json(tree))
        else:
            print("Routing tree:\n" + "\n".join(tree_lines(tree)))
        return 0
    try:
        labels = parse_labels(args.labels)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    found = matching_routes(tree, labels)
    receivers = ",".join(m.receiver for m in found)
    if args.json:
        print_json({"labels": found[0].labels if found else labels, "receivers": [m.receiver for m in found],
                    "routes": [m.as_dict() for m in found]})
    else:
        print(receivers)
        for m in found:
            c = m.config
            via = " > ".join(matchers_text(r) for r in m.path) + ("  (continue)" if c.continue_ else "")
            group = ",".join(f'{k}="{v}"' for k, v in sorted(m.group_labels.items()))
            print(f"  {m.receiver}: route {via}")
            print(f"    group_by [{', '.join(m.group_by)}] -> group {{{group}}}; group_wait "
                  f"{format_duration(c.group_wait)}, group_interval {format_duration(c.group_interval)}, "
                  f"repeat_interval {format_duration(c.repeat_interval)}")
            intervals = [f"muted {', '.join(c.mute_time_intervals)}"] if c.mute_time_intervals else []
            intervals += [f"active {', '.join(c.active_time_intervals)}"] if c.active_time_intervals else []
            if intervals:
                print(f"    time intervals: {'; '.join(intervals)}")
        if args.tree:
            print("Matching routes:\n" + "\n".join(tree_lines(tree, {m.route.id for m in found})))
    if args.expect is not None and args.expect != receivers:
        print(f"error: expected the receivers {args.expect}, got {receivers}")
        return 1
    return 0


def _tree_json(node) -> dict:
    c = node.config
    return {"route": matchers_text(node), "id": node.id, "receiver": c.receiver, "continue": c.continue_,
            "group_by": ["..."] if c.group_by_all else list(c.group_by), "group_wait": c.group_wait,
            "group_interval": c.group_interval, "repeat_interval": c.repeat_interval,
            "mute_time_intervals": list(c.mute_time_intervals),
            "active_time_intervals": list(c.active_time_intervals),
            "routes": [_tree_json(child) for child in node.children]}
