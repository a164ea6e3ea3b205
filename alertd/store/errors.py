"""Store faults in one sentence: what is wrong with the SQLite file and what to do.

SQLite's own messages ("attempt to write a readonly database", "database is locked",
"database or disk is full") are accurate but say nothing of which file or what to do; these
sentences name the file and the fix. Used when the store opens (a `StoreError` stops the
start) and when a write fails while the daemon runs (logged; the work is retried later).
"""

from __future__ import annotations

import sqlite3


class StoreError(Exception):
    """The store cannot be opened or written; the message is one sentence with the fix."""


def explain(exc: BaseException, path: str) -> str:
    """One sentence for a store failure `exc` on the file `path`."""
    detail = str(exc) or type(exc).__name__
    text = detail.lower()
    if "readonly" in text or "read-only" in text or isinstance(exc, PermissionError):
        return (f"the store {path} is read-only ({detail}); make the file, its -wal/-shm files and "
                "its directory writable by the user alertd runs as")
    if "locked" in text or "busy" in text:
        return (f"the store {path} is locked by another writer ({detail}); stop the other process "
                "holding it (a second alertd, an sqlite3 shell in a transaction); alertd retries")
    if "full" in text or isinstance(exc, OSError) and getattr(exc, "errno", None) == 28:
        return (f"the store {path} is full ({detail}); free space on its disk (or raise the "
                "file-size limit); alertd retries, and nothing committed is lost")
    if "malformed" in text or "not a database" in text:
        return (f"the store {path} is damaged or not an alertd store ({detail}); restore it from a "
                "backup (docs/operations.md)")
    if "unable to open" in text or isinstance(exc, OSError):
        return (f"cannot open the store {path} ({detail}); check that its directory exists and is "
                "writable, or set --store")
    return f"the store {path} failed: {type(exc).__name__}: {detail}"


def is_store_error(exc: BaseException) -> bool:
    """An error of SQLite (or the file under it) rather than of alertd's own code."""
    return isinstance(exc, (sqlite3.Error, StoreError))
