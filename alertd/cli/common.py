"""CLI commands, one module each, and the helpers they share."""

from __future__ import annotations

import os
from pathlib import Path


class CommandError(Exception):
    """A user-fixable problem with a command; printed as one sentence, exit code 1."""


def add_config_arg(parser) -> None:
    parser.add_argument("-c", "--config", default=os.environ.get("ALERTD_CONFIG", "alertd.yaml"),
                        help="the config file (default: $ALERTD_CONFIG or alertd.yaml)")


def add_store_arg(parser) -> None:
    parser.add_argument("--store", help="the SQLite store (default: the config's store)")


def add_shard_arg(parser) -> None:
    parser.add_argument("--shard", metavar="I/N",
                        help='run only shard I of N (e.g. 0/2); overrides the config\'s "shard" key')


def shard_arg(args):
    """The `--shard I/N` of a command as a Shard, None when not given; CommandError when bad."""
    from ..config.shards import parse_shard

    text = getattr(args, "shard", None)
    if text is None:
        return None
    try:
        return parse_shard(text)
    except ValueError as exc:
        raise CommandError(f"--shard {exc}") from None


def load(args):
    """(config, registry) for `args.config`: plugins first (plugin_dirs), then validation."""
    from ..config.load import load_with_plugins
    from ..render.annotations import check_annotation

    return load_with_plugins(args.config, annotation_check=check_annotation)


def open_store(args):
    """The Store named by --store, or by the config's `store` key."""
    from ..store import Store

    path = getattr(args, "store", None)
    if not path:
        config, _ = load(args)
        path = config.store_path()
    elif not Path(path).exists():
        raise CommandError(f"the store {path} does not exist; check --store or run the daemon first")
    return Store(path)
