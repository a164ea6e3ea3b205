"""Process tuning for a long-running daemon with many long-lived objects.

CPython's cyclic garbage collector scans every tracked object in a full collection; with tens
of thousands of incidents, windows and caches alive, the default thresholds (700, 10, 10) make
those scans frequent and put 20-50 ms pauses into ticks (measured with bench/routing.py).
`tune_gc()` freezes what exists after start-up (config, plugins, restored state: never
collected) and makes the young generation larger, as long-running Python services commonly do.

The larger young generation has a cost that only time shows: a young collection waits for
50,000 net allocations of containers, and a steady daemon makes few (most of what a poll
builds is freed by reference counts), so cyclic garbage waited an hour or more for it.
Libraries the daemon calls on every poll leave such cycles: each PyOD KNN score goes through
scikit-learn's `kneighbors`, which builds a joblib `Parallel` that refers to itself through its
backend (about 7 KB with its queues and locks), and each webhook connection leaves httpx's,
httpcore's and h11's objects in a cycle. With the real-time soak's config (bench/soak_realtime.py)
that was 21,800 objects and 5.6 MB (by `sys.getsizeof`) an hour, held until the collection
and then left behind as a larger heap. The `daemon:memory` job (alertd/daemon/scheduler.py)
runs `gc.collect()` every 5 minutes: frozen objects are not walked, so it costs a few
milliseconds, and no cycle outlives the job's period.
"""

from __future__ import annotations

import gc

GC_THRESHOLDS = (50_000, 20, 100)


def tune_gc() -> None:
    """Freeze start-up objects and raise the collection thresholds (call once, after start)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


class FirstSliceGC:
    """Automatic collections held off from the start of a tick until its first slice is
    judged and that slice's notices have had their chance to leave (`release()`).

    Even with the raised thresholds a 10,000-series poll makes a young-generation pass every
    poll or two, and one that lands between the samples and the first slice's notice adds
    20-30 ms to it (bench/latency.py --trace); held off, it runs while the rest of the poll
    is scored. Nothing is skipped: the allocations still count, and the next one after
    `release()` collects if a threshold was passed. A collector already disabled (by the
    embedding program) is left alone."""

    __slots__ = ("held",)

    def __init__(self):
        self.held = gc.isenabled()
        if self.held:
            gc.disable()

    def release(self) -> None:
        if self.held:
            self.held = False
            gc.enable()
