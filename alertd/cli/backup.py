"""`alertd backup`: copy the store to a file while the daemon runs (SQLite's online backup)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ..store import create_private
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
    source = _source_path(args)
    dest = Path(args.destination)
    if dest.exists():
        raise CommandError(f"{dest} already exists; choose a new file name (backups never overwrite)")
    if not dest.parent.is_dir():
        raise CommandError(f"the directory {dest.parent} does not exist; create it first")
    create_private(dest)  # a copy of the store is as private as the store
    try:
        with sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=10) as src, \
                sqlite3.connect(dest) as out:
            src.backup(out)  # a consistent snapshot, even while the daemon writes (WAL)
            out.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            incidents = out.execute("SELECT count(*) FROM incidents").fetchone()[0]
            pending = out.execute("SELECT count(*) FROM outbox WHERE status = 'pending'").fetchone()[0]
    except sqlite3.Error as exc:
        dest.unlink(missing_ok=True)
        raise CommandError(f"cannot back up {source}: {exc}") from None
    size = dest.stat().st_size
    print(f"backed up {source} to {dest} ({size / 1e6:.1f} MB, {incidents} incidents, "
          f"{pending} pending notifications)")
    return 0
