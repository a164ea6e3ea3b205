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
