"""Handing the memory a process has freed back to the system (glibc's `malloc_trim`).

glibc keeps what freed blocks leave behind in its heaps for reuse. It gives pages back to the
system only from the top of a heap, and only past a trim threshold that grows with the
largest block freed so far (a poll's numpy arrays: megabytes), so the freed fragments of a
long-running process's work stay in its RSS. `malloc_trim(0)` returns every whole free page
of every heap, not only the top (`madvise(MADV_DONTNEED)`); a page used again later is
faulted back in.

What it is worth, measured: the fit worker process after a 10,000-series fit, 647 -> 327 MB
(docs/benchmarks.md). In the daemon, in the real-time soak (bench/soak_realtime.py), each
trim gives back 0.5-2 MiB, and the soak's anonymous RSS was 1-2 MiB lower from 35
minutes on than without it, with the same slope after the first hour: the daemon's own slow
growth was not freed memory kept by glibc but cyclic garbage waiting for a collection, which
the same job now collects first (alertd/daemon/gc_tuning.py, docs/reliability.md). (A trim of a daemon under
tracemalloc gave back 95 MiB: that was tracemalloc's own snapshots, not the daemon's.)

The daemon calls `trim()` every 5 minutes off the event loop (its `daemon:memory` job, after
that job's garbage collection); the fit worker process calls it after each fit. Where the C
library is not glibc, nothing (the job still collects).
"""

from __future__ import annotations

import ctypes
import gc
import os
import re

_libc = None


def _malloc_trim():
    global _libc
    if _libc is None:
        try:
            _libc = ctypes.CDLL("libc.so.6")  # (a CDLL call releases the GIL while it runs)
            _libc.malloc_trim.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):
            _libc = False
    return _libc.malloc_trim if _libc else None


def anonymous_rss() -> int | None:
    """The process's anonymous resident memory in bytes (its heaps: no shared libraries'
    pages), or None where /proc has no such line."""
    try:
        with open(f"/proc/{os.getpid()}/status") as f:
            m = re.search(r"^RssAnon:\s+(\d+) kB", f.read(), re.M)
    except OSError:
        return None
    return int(m.group(1)) * 1024 if m else None


def available() -> bool:
    """Whether this C library can give freed memory back (glibc)."""
    return _malloc_trim() is not None


def trim(collect: bool = False) -> int | None:
    """Give every whole free page of the C heaps back to the system; with `collect`, run
    Python's garbage collector first (what only a cycle holds is freed too). Returns the
    anonymous RSS it gave back in bytes (0 if none), or None where there is no glibc.
    Call it off the event loop: on a heap of a few hundred MiB it takes milliseconds, and
    it holds each heap's lock while it walks it."""
    fn = _malloc_trim()
    if fn is None:
        return None
    if collect:
        gc.collect()
    before = anonymous_rss()
    fn(0)
    after = anonymous_rss()
    return max(0, before - after) if before is not None and after is not None else 0
