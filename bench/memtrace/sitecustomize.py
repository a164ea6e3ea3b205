"""A memory trace of a running daemon, for real-time soaks (bench/soak_realtime.py --memtrace DIR).

Put this directory on the daemon's PYTHONPATH and set ALERTD_MEMTRACE_DIR: Python imports it
at start-up (as `sitecustomize`), starts tracemalloc with ALERTD_MEMTRACE_FRAMES frames (10)
and a thread that, every ALERTD_MEMTRACE_EVERY seconds (600), writes into the directory
  - `snap-PID-NNNN.pickle`: a tracemalloc snapshot (compare two with `snapshot.compare_to`);
  - one line of `stats.jsonl`: the process id (the fit worker process inherits the
    environment and is traced too), the time, tracemalloc's traced bytes, glibc's `mallinfo2`
    (bytes malloc has in use and holds free: what is not traced lives there or in mmap'd
    Python arenas), pymalloc's arenas (`sys._debugmallocstats`: arenas held, bytes in used
    and in free blocks), the anonymous RSS, and the 25 most common object types with their
    counts.
ALERTD_MEMTRACE_FRAMES=0 leaves tracemalloc off (no snapshots): its own allocations and
snapshots move every other figure.
Without ALERTD_MEMTRACE_DIR it does nothing. A bench tool, never installed with the package.
"""

import os

if os.environ.get("ALERTD_MEMTRACE_DIR"):
    import collections
    import ctypes
    import gc
    import json
    import threading
    import time
    import tracemalloc

    _DIR = os.environ["ALERTD_MEMTRACE_DIR"]
    _EVERY = float(os.environ.get("ALERTD_MEMTRACE_EVERY", "600"))
    os.makedirs(_DIR, exist_ok=True)
    _FRAMES = int(os.environ.get("ALERTD_MEMTRACE_FRAMES", "10"))
    if _FRAMES:
        tracemalloc.start(_FRAMES)

    class _MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
            "keepcost")]

    def _mallinfo() -> dict:
        try:
            fn = ctypes.CDLL("libc.so.6").mallinfo2
        except (OSError, AttributeError):
            return {}
        fn.restype = _MallInfo2
        info = fn()
        return {"heap": info.arena, "mmapped": info.hblkhd, "in_use": info.uordblks, "free": info.fordblks}

    def _pymalloc() -> dict:
        """pymalloc's own accounting, from what `sys._debugmallocstats` prints on stderr (fd 2,
        pointed at a file for the call)."""
        import re
        import sys
        import tempfile

        with tempfile.TemporaryFile(mode="w+") as out:
            sys.stderr.flush()
            saved = os.dup(2)
            try:
                os.dup2(out.fileno(), 2)
                sys._debugmallocstats()
            finally:
                os.dup2(saved, 2)
                os.close(saved)
            out.seek(0)
            text = out.read()
        found = {}
        for name, pattern in (("arenas", r"# arenas allocated current\s*=\s*([\d,]+)"),
                              ("used", r"# bytes in allocated blocks\s*=\s*([\d,]+)"),
                              ("free_blocks", r"# bytes in available blocks\s*=\s*([\d,]+)"),
                              ("total", r"Total\s*=\s*([\d,]+)")):
            m = re.search(pattern, text)
            if m:
                found[name] = int(m.group(1).replace(",", ""))
        return found

    def _anon() -> int:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("RssAnon"))

    def _types() -> list:
        counts = collections.Counter(type(o).__name__ for o in gc.get_objects())
        return counts.most_common(25)

    def _dump(n: int) -> None:
        if _FRAMES:
            snap = tracemalloc.take_snapshot().filter_traces(
                (tracemalloc.Filter(False, tracemalloc.__file__),))
            snap.dump(os.path.join(_DIR, f"snap-{os.getpid()}-{n:04d}.pickle"))
        traced, peak = tracemalloc.get_traced_memory()
        line = {"pid": os.getpid(), "t": time.time(), "n": n, "traced": traced, "traced_peak": peak,
                "rss_anon": _anon(), "pymalloc": _pymalloc(), "malloc": _mallinfo(),
                "threads": threading.active_count(), "types": _types()}
        with open(os.path.join(_DIR, "stats.jsonl"), "a") as f:
            f.write(json.dumps(line) + "\n")

    def _run() -> None:
        n = 0
        while True:
            time.sleep(_EVERY if n else min(_EVERY, 120))
            _dump(n)
            n += 1

    threading.Thread(target=_run, name="memtrace", daemon=True).start()
