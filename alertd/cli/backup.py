"""`alertd backup`: copy the store to a file while the daemon runs (SQLite's online backup)."""

from __future__ import annotations

from pathlib import Path

from .common import CommandError, add_config_arg, add_store_arg

NAME = "backup"
HELP = "copy the SQLite store to a file, safely while the daemon runs"


def configure(parser) -> None:
    add_config_arg(parser)
    add_store_arg(parser)
    parser.add_argument("destination", help="the backup file to write (must not exist)")


def _source_path(args) -> Path:
    if args.store:
        path = Path(args.store)
    else:
        from .common import load
        config, _ = load(args)
        path = config.store_path()
    if not path.exists():
        raise CommandError(f"the store {path} does not exist; check --store or the config's store key")
    return path


def run(args) -> int:
    from ..store import create_private
    from ..store.backup import backup
    from ..store.errors import StoreError

    source = _source_path(args)
    dest = Path(args.destination)
    if dest.exists():
        raise CommandError(f"{dest} already exists; choose a new file name (backups never overwrite)")
    if not dest.parent.is_dir():
        raise CommandError(f"the directory {dest.parent} does not exist; create it first")
    create_private(dest)  # a copy of the store is as private as the store
    try:
        result = backup(source, dest)
    except StoreError as exc:
        raise CommandError(str(exc)) from None
    print(f"backed up {source} to {dest} ({result.size / 1e6:.1f} MB, {result.incidents} incidents, "
          f"{result.pending} pending notifications)")
    return 0
