"""The `alertd` command line: one module per command in `alertd/cli/` (listed in `COMMANDS`).

Each command module has `NAME`, `HELP`, `configure(parser)` and `run(args) -> int`. Errors a
user can fix are raised as `CommandError` (or ConfigError / PluginError) and printed as one
sentence with exit code 1; tracebacks appear only with `--debug`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback

from .. import __version__
from .common import CommandError

# The command modules, in the order `alertd --help` lists them.
COMMANDS = ("backtest", "backup", "incidents", "notifications", "notify_sample", "plugins", "routes", "run",
            "silence", "validate")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="alertd", description="A plugin-based alerting daemon.")
    parser.add_argument("--version", action="version", version=f"alertd {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"{__package__}.{name}")
        cmd = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        cmd.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                         help="show tracebacks on errors")
        module.configure(cmd)
        cmd.set_defaults(func=module.run)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        report(exc, args)
    return 1


def report(exc: Exception, args) -> None:
    """A command's error as one sentence on stderr (a config's: one per problem)."""
    # (imported here: a command that ends well never pays for these modules)
    from ..base import SourceError
    from ..config.schema import ConfigError
    from ..plugins import PluginError
    from ..store.errors import StoreError

    if isinstance(exc, ConfigError):
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        n = len(exc.problems)
        print(f"{n} error{'s' if n != 1 else ''} in the config; nothing was started.", file=sys.stderr)
    elif isinstance(exc, PluginError):
        print(f"error: {exc}", file=sys.stderr)
        if args.debug and exc.details:
            print(exc.details, file=sys.stderr)
    elif isinstance(exc, (CommandError, SourceError, StoreError)):
        print(f"error: {exc}", file=sys.stderr)
    else:
        if args.debug or os.environ.get("ALERTD_DEBUG"):
            traceback.print_exception(exc)
        print(f"error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
