"""`alertd run`: start the daemon in the foreground (systemd runs exactly this)."""

from __future__ import annotations

import asyncio

from ..daemon.core import Daemon, StartupError
from ..log import configure as configure_logging
from .common import CommandError, add_config_arg, add_shard_arg, add_store_arg, load, shard_arg

NAME = "run"
HELP = "run the daemon in the foreground until SIGTERM or Ctrl-C"


def configure(parser) -> None:
    add_config_arg(parser)
    add_store_arg(parser)
    add_shard_arg(parser)
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--log-format", choices=["auto", "json", "console"], default="auto",
                        help="JSON lines when stdout is not a TTY (auto), or force one")


def run(args) -> int:
    shard = shard_arg(args)
    config, registry = load(args)
    fmt = {"auto": None, "json": True, "console": False}[args.log_format]
    configure_logging(args.log_level, json_lines=fmt)
    daemon = Daemon(config, registry, store_path=args.store, shard=shard)
    try:
        return asyncio.run(daemon.run())
    except StartupError as exc:
        raise CommandError(str(exc)) from None
