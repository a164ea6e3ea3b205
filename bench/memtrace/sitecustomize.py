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
snapshots move every other figure. ALERTD_MEMTRACE_NEW=1 adds `new`: the objects that appeared
since the last dump and are still alive, by type, and for a sample of the new dicts, tuples
and lists what holds them (the holder's type, and for an object's `__dict__` its class and
attribute) - what grows, and where it hangs (each dump then holds the GIL for a few seconds).
ALERTD_MEMTRACE_GARBAGE=1 adds `garbage`: what a full collection found unreachable since the
last dump (only reference cycles wait for a collection), by type and by class, with
`sys.getsizeof` bytes; the collection frees it, as the daemon's `daemon:memory` job does.
Two blind spots: `gc.get_objects()` does not list what the daemon froze at start-up
(`gc.freeze()`, alertd/daemon/gc_tuning.py), so growth inside those objects (entries added to
a dict made at start-up) shows in `new` only as the new entries' containers; and objects the
collector does not track (str, float, bytes, numpy arrays) are not listed at all.
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

    _seen_ids: set = set()

    def _holder(obj, new_ids: set, skip: tuple) -> str:
        for ref in gc.get_referrers(obj):
            if (id(ref) in new_ids or any(ref is x for x in skip)
                    or type(ref).__name__ in ("function", "cell", "frame")):
                continue
            if isinstance(ref, dict):
                owners = [type(o).__name__ for o in gc.get_referrers(ref)
                          if getattr(o, "__dict__", None) is ref]
                keys = [k for k, v in ref.items() if v is obj][:1]
                return f"dict of {owners[0] if owners else '?'} at {str(keys)[:60]}"
            return type(ref).__name__
        return "-"

    def _new_objects() -> dict:
        global _seen_ids
        gc.collect()
        objs = gc.get_objects()
        ids = {id(o) for o in objs}
        if not _seen_ids:
            _seen_ids = ids
            return {}
        new = [o for o in objs if id(o) not in _seen_ids]
        new_ids = {id(o) for o in new}
        by_type = collections.Counter(type(o).__name__ for o in new).most_common(12)
        held = collections.Counter()
        examples = {}
        for kind in (dict, tuple, list):
            sample = [o for o in new if type(o) is kind][:30]
            for o in sample:
                where = f"{kind.__name__} in {_holder(o, new_ids, (objs, new, sample))}"
                held[where] += 1
                examples.setdefault(where, repr(o)[:160])
        _seen_ids = ids
        return {"count": len(new), "by_type": by_type,
                "held": [(k, v, examples[k]) for k, v in held.most_common(15)]}

    def _garbage() -> dict:
        import sys

        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            found = gc.collect()
            garbage = list(gc.garbage)
            gc.garbage.clear()
        finally:
            gc.set_debug(0)
        by_class = collections.Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in garbage)
        size = sum(sys.getsizeof(o) for o in garbage)
        del garbage
        return {"count": found, "bytes": size, "by_class": by_class.most_common(15)}

    def _types() -> list:
        counts = collections.Counter(type(o).__name__ for o in gc.get_objects())
        return counts.most_common(25)

    def _dump(n: int) -> None:
        from alertd.memory_trim import anonymous_rss as _anon_rss  # (imported late: not at every start)

        if _FRAMES:
            snap = tracemalloc.take_snapshot().filter_traces(
                (tracemalloc.Filter(False, tracemalloc.__file__),))
            snap.dump(os.path.join(_DIR, f"snap-{os.getpid()}-{n:04d}.pickle"))
        traced, peak = tracemalloc.get_traced_memory()
        garbage = _garbage() if os.environ.get("ALERTD_MEMTRACE_GARBAGE") else None  # (before `new` collects)
        line = {"pid": os.getpid(), "t": time.time(), "n": n, "traced": traced, "traced_peak": peak,
                "garbage": garbage,
                "rss_anon": _anon_rss(), "pymalloc": _pymalloc(), "malloc": _mallinfo(),
                "threads": threading.active_count(), "types": _types(),
                "new": _new_objects() if os.environ.get("ALERTD_MEMTRACE_NEW") else None}
        with open(os.path.join(_DIR, "stats.jsonl"), "a") as f:
            f.write(json.dumps(line) + "\n")

    def _run() -> None:
        n = 0
        while True:
            time.sleep(_EVERY if n else min(_EVERY, 120))
            _dump(n)
            n += 1

    threading.Thread(target=_run, name="memtrace", daemon=True).start()
