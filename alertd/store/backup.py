"""Online backup of the store: a consistent copy while the daemon writes (SQLite's backup API)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from .errors import StoreError


@dataclass(frozen=True)
class BackupResult:
    """What a backup wrote: its size, and the incidents and pending notices it holds."""

    size: int
    incidents: int
    pending: int


def backup(source: str | Path, dest: str | Path) -> BackupResult:
    """Copy the store at `source` into the new file `dest` (already created, private).

    The copy is a consistent snapshot even while the daemon writes (WAL), in one
    self-contained file (journal mode DELETE). StoreError with one sentence on failure; the
    partial file is removed.
    """
    dest = Path(dest)
    try:
        with sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=10) as src, \
                sqlite3.connect(dest) as out:
            src.backup(out)
            out.execute("PRAGMA journal_mode=DELETE")
            incidents = out.execute("SELECT count(*) FROM incidents").fetchone()[0]
            pending = out.execute("SELECT count(*) FROM outbox WHERE status = 'pending'").fetchone()[0]
    except sqlite3.Error as exc:
        dest.unlink(missing_ok=True)
        raise StoreError(f"cannot back up {source}: {exc}") from None
    return BackupResult(dest.stat().st_size, incidents, pending)
