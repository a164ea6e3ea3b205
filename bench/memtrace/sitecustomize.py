"""A memory trace of a running daemon, for real-time soaks (bench/soak_realtime.py --memtrace DIR).

Put this directory on the daemon's PYTHONPATH and set ALERTD_MEMTRACE_DIR: Python imports it
at start-up (as `sitecustomize`), starts tracemalloc with ALERTD_MEMTRACE_FRAMES frames (10)
and a thread that, every ALERTD_MEMTRACE_EVERY seconds (600), writes into the directory
  - `snap-PID-NNNN.pickle`: a tracemalloc snapshot (compare two with `snapshot.compare_to`);
  - one line of `stats.jsonl`: the process id (the fit worker process inherits the
    environment and is traced too), the time, tracemalloc's traced bytes, glibc's `mallinfo2`
    (bytes malloc has in use and holds free: what is not traced lives there or in mmap'd
    Python arenas) and the 25 most common object types with their counts.
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
    tracemalloc.start(int(os.environ.get("ALERTD_MEMTRACE_FRAMES", "10")))

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

    def _types() -> list:
        counts = collections.Counter(type(o).__name__ for o in gc.get_objects())
        return counts.most_common(25)

    def _dump(n: int) -> None:
        snap = tracemalloc.take_snapshot().filter_traces(
            (tracemalloc.Filter(False, tracemalloc.__file__),))
        snap.dump(os.path.join(_DIR, f"snap-{os.getpid()}-{n:04d}.pickle"))
        traced, peak = tracemalloc.get_traced_memory()
        line = {"pid": os.getpid(), "t": time.time(), "n": n, "traced": traced, "traced_peak": peak, "malloc": _mallinfo(),
                "threads": threading.active_count(), "types": _types()}
        with open(os.path.join(_DIR, "stats.jsonl"), "a") as f:
            f.write(json.dumps(line) + "\n")

    def _run() -> None:
        n = 0
        while True:
            time.sleep(_EVERY if n else 120)
            _dump(n)
            n += 1

    threading.Thread(target=_run, name="memtrace", daemon=True).start()
