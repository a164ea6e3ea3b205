"""One daemon per store: an exclusive `flock` on a lock file beside it (`alertd.db.lock`).

Two daemons on one store (configs that differ only in the port) would both tick, group and
deliver: every notice sent twice or more. The daemon takes the lock when it opens the
store and keeps it until it exits (the kernel lets go when the process dies, even by
SIGKILL). The file holds who has it (pid, host, config, when) so that the second daemon can
say so in one sentence, and the id of the store it used (see `StoreIdentity`), so a store
deleted or emptied between two runs is noticed when the next run makes a new, empty one.
The commands that read or change the store beside a running daemon (`alertd incidents`,
`silence`, `backup`) do not take it.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time

from .errors import StoreError


def lock_path(store_path: str) -> str:
    return f"{store_path}.lock"


class StoreLock:
    """The exclusive lock on a store's lock file; `previous` is what the last holder wrote."""

    def __init__(self, store_path: str):
        self.store_path = str(store_path)
        self.path = lock_path(self.store_path)
        self.fd: int | None = None
        self.previous: dict = {}

    def acquire(self, **info) -> None:
        """Take the lock and record `info` (with pid, host, time); StoreError naming the
        holder when another process has it."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise StoreError(f"the store {self.store_path} is read-only (cannot create {self.path} beside it: "
                             f"{exc.strerror}); make the file, its -wal/-shm files and its directory writable "
                             "by the user alertd runs as") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            os.close(fd)
            raise StoreError(f"the store {self.store_path} is in use by {describe(holder)}; stop that "
                             "daemon first, or give this one a store of its own (--store, or the "
                             "config's store key)") from None
        self.previous = _read(fd)
        record = {"pid": os.getpid(), "host": socket.gethostname(), "started_at": time.time(), **info}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
        self.fd = fd

    def update(self, **info) -> None:
        """Add `info` to what the lock file says about this holder."""
        if self.fd is None:
            return
        record = {**_read(self.fd), **info}
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, (json.dumps(record) + "\n").encode(), 0)

    def release(self) -> None:
        """Let go (the file stays: it says who had the store last)."""
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def _read(fd: int) -> dict:
    try:
        data = json.loads(os.pread(fd, 65536, 0) or b"{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def describe(holder: dict) -> str:
    """'another alertd (pid 4711 on web1, started 2026-12-06 08:00:00 UTC, config /etc/...)'."""
    parts = []
    if holder.get("pid"):
        parts.append(f"pid {holder['pid']}" + (f" on {holder['host']}" if holder.get("host") else ""))
    if isinstance(holder.get("started_at"), (int, float)):
        parts.append("started " + time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(holder["started_at"])))
    if holder.get("config"):
        parts.append(f"config {holder['config']}")
    return "another alertd" + (f" ({', '.join(parts)})" if parts else " (the lock file names no holder)")
