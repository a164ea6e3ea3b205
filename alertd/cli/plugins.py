"""`alertd plugins`: list every plugin with its kind and origin."""

from __future__ import annotations

import json
from pathlib import Path

from .common import add_config_arg

NAME = "plugins"
HELP = "list the source, detector and notifier plugins and where each came from"


def configure(parser) -> None:
    add_config_arg(parser)
    parser.add_argument("--json", action="store_true", help="print JSON")


def run(args) -> int:
    from ..config.load import plugin_dirs_of, read_config_file
    from ..plugins import load_registry

    dirs, base = ("plugins",), Path.cwd()
    if Path(args.config).exists():
        dirs, base = plugin_dirs_of(read_config_file(args.config)), Path(args.config).resolve().parent
    registry = load_registry(dirs, base_dir=base)
    rows = [info.as_dict() for info in registry.all()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        print(f"{r['kind']:<9} {r['name']:<{width}}  {r['origin']:<12} {r['summary']}")
    return 0
