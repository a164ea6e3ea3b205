"""Process tuning for a long-running daemon with many long-lived objects.

CPython's cyclic garbage collector scans every tracked object in a full collection; with tens
of thousands of incidents, windows and caches alive, the default thresholds (700, 10, 10) make
those scans frequent and put 20-50 ms pauses into ticks (measured with bench/routing.py).
`tune_gc()` freezes what exists after start-up (config, plugins, restored state: never
collected) and makes the young generation larger, as long-running Python services commonly do.
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
