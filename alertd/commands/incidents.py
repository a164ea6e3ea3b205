"""`alertd incidents`: open (or all) incidents from the store."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from . import add_config_arg, add_store_arg, open_store

NAME = "incidents"
HELP = "list open incidents (or all with --all)"


def configure(parser) -> None:
    add_config_arg(parser)
    add_store_arg(parser)
    parser.add_argument("--all", action="store_true", help="include resolved incidents")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--limit", type=int, default=100)


def _when(ts) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def run(args) -> int:
    store = open_store(args)
    try:
        incidents = store.incidents.list(include_closed=args.all, limit=args.limit)
    finally:
        store.close()
    if args.json:
        print(json.dumps([i.as_dict() for i in incidents], indent=2))
        return 0
    if not incidents:
        print("no open incidents" if not args.all else "no incidents")
        return 0
    for i in incidents:
        labels = ",".join(f"{k}={v}" for k, v in sorted(i.labels.items()))
        print(f"#{i.id:<5} {i.state:<9} {i.severity:<8} {i.rule} {{{labels}}} since {_when(i.started_at)} "
              f"count={i.count} last={i.last_value if i.last_value is not None else '-'}  {i.reason}")
    return 0
