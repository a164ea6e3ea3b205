"""`alertd run`: start the daemon in the foreground (systemd runs exactly this).

With JSON log lines (stdout not a TTY, as under systemd, or `--log-format json`), even the
error that stops the start is a JSON line (on stderr: `config_invalid` with `problems`,
`plugin_load_failed`, `daemon_start_failed`), so the journal stays JSON for `jq`.
"""

from __future__ import annotations

import sys

NAME = "run"
HELP = "run the daemon in the foreground until SIGTERM or Ctrl-C"


def configure(parser) -> None:
    from .common import add_config_arg, add_shard_arg, add_store_arg

    add_config_arg(parser)
    add_store_arg(parser)
    add_shard_arg(parser)
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--log-format", choices=["auto", "json", "console"], default="auto",
                        help="JSON lines when stdout is not a TTY (auto), or force one")


def run(args) -> int:
    import asyncio

    from ..base import SourceError
    from ..config.schema import ConfigError
    from ..log import configure as configure_logging
    from ..log import json_error
    from ..plugins import PluginError
    from ..store.errors import StoreError
    from .common import CommandError, load, shard_arg

    fmt = {"auto": None, "json": True, "console": False}[args.log_format]
    json_lines = fmt if fmt is not None else not sys.stdout.isatty()
    try:
        shard = shard_arg(args)
        config, registry = load(args)
    except ConfigError as exc:
        if not json_lines:
            raise
        n = len(exc.problems)
        json_error("config_invalid", f"{n} error{'s' if n != 1 else ''} in the config; nothing was started.",
                   problems=[str(p) for p in exc.problems])
        return 1
    except (PluginError, CommandError) as exc:
        if not json_lines:
            raise
        json_error("plugin_load_failed" if isinstance(exc, PluginError) else "command_failed", str(exc))
        return 1
    configure_logging(args.log_level, json_lines=fmt)

    from ..daemon.core import Daemon, StartupError

    daemon = Daemon(config, registry, store_path=args.store, shard=shard)
    try:
        return asyncio.run(daemon.run())
    except (StartupError, StoreError, SourceError) as exc:
        if json_lines:
            json_error("daemon_start_failed", str(exc))
            return 1
        if isinstance(exc, SourceError):
            raise
        raise CommandError(str(exc)) from None
