"""`alertd validate`: check a config file and print a summary (secrets redacted)."""

from __future__ import annotations

import dataclasses

from .common import add_config_arg, add_shard_arg, load, shard_arg

NAME = "validate"
HELP = "check a config file; exit 0 if it is valid, 1 with every error if not"


def configure(parser) -> None:
    add_config_arg(parser)
    parser.add_argument("-v", "--verbose", action="store_true", help="also print every plugin's parameters")
    add_shard_arg(parser)


def redacted_params(params, secrets) -> dict:
    if params is None or not dataclasses.is_dataclass(params):
        return {}
    out = {}
    for f in dataclasses.fields(params):
        value = getattr(params, f.name)
        text = str(value)
        if any(s and s in text for s in secrets) or type(value).__name__ == "Secret":
            value = "***"
        out[f.name] = value
    return out


def run(args) -> int:
    from ..config.shards import apply_shard, rule_shard

    shard = shard_arg(args)
    config, _ = load(args)
    print(f"{config.path} is valid: {len(config.sources)} sources, {len(config.rules)} rules, "
          f"{len(config.receivers)} receivers.")
    from ..durations import format_duration
    how = "" if config.retention_given else " (not set: what the rules read, at least 7d)"
    print(f"  store    {config.store}, retention {format_duration(config.retention)}{how}")
    mine = apply_shard(config, shard)
    if mine.shard is not None:
        print(f"  shard    {mine.shard}: this instance runs {len(mine.rules)} of {len(config.rules)} rules "
              f"and polls {len(mine.sources)} of {len(config.sources)} sources "
              f"({', '.join(mine.sources) or 'none'})")
    for sc in config.sources.values():
        schedule = f"every {sc.every:g}s" if sc.every else f"cron {sc.cron}"
        print(f"  source   {sc.name}: {sc.type}, {schedule}")
        if args.verbose:
            print(f"           {redacted_params(sc.params, config.secrets)}")
    for rule in config.rules:
        print(f"  rule     {rule.name}: {rule.series} from {rule.source}, detector {rule.detector.type}"
              f"{f', for {rule.for_:g}s' if rule.for_ else ''}, severity {rule.severity}"
              + (f" [shard {rule_shard(rule.name, mine.shard.count)}]" if mine.shard else ""))
        if args.verbose:
            print(f"           {redacted_params(rule.detector.params, config.secrets)}")
    if config.routes is not None:
        from ..routing.tree import compile_tree
        nodes = sum(1 for _ in compile_tree(config.routes).walk())
        print(f"  routes   {nodes} route{'s' if nodes != 1 else ''}, {len(config.inhibit_rules)} inhibit "
              f"rule{'s' if len(config.inhibit_rules) != 1 else ''}, {len(config.time_intervals)} time "
              f"interval{'s' if len(config.time_intervals) != 1 else ''}")
        if args.verbose:  # the tree (`alertd routes test LABELS...` says who gets an alert)
            from ..routing.route_match import tree_lines
            for line in tree_lines(compile_tree(config.routes))[1:]:
                print(f"           {line}")
    hc = config.http
    if hc.enabled:
        if hc.writes_enabled:
            writes = f"changes from the API, and from the pages after a login ({hc.login.method})"
        elif hc.login.method == "header":
            writes = "changes from the pages as the proxy's user; API changes disabled (no token or basic_auth)"
        else:
            writes = "changes disabled (no token or basic_auth)"
        reads = "need a login" if hc.login.pages_need_login else "open"
        print(f"  http     {hc.listen}: pages (reads {reads}), /metrics, /healthz, JSON API; {writes}")
    else:
        print("  http     disabled")
    for name, items in config.receivers.items():
        parts = [n.type if n.enabled else f"{n.type} (disabled: its if_env variable is unset)" for n in items]
        print(f"  receiver {name}: {', '.join(parts) or 'no integrations'}")
        if args.verbose:
            for n in items:
                if n.enabled:
                    print(f"           {n.type}: {redacted_params(n.params, config.secrets)}")
    for warning in config.warnings:
        print(f"warning: {warning}")
    return 0
