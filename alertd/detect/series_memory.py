"""Per-series state a detector keeps between ticks, as numpy columns indexed by series key.

Detectors see a `Batch` of series keys each tick; `SeriesMemory.rows(keys)` maps them to
stable row numbers (adding new series), so state such as "points seen at the last onset"
or "when did this series last send a point" is read and written with vectorised indexing.
"""

from __future__ import annotations

import numpy as np


class SeriesMemory:
    """Named float columns, one row per series key; new rows start at each column's default."""

    def __init__(self, **defaults: float):
        self.defaults = defaults
        self.index: dict[str, int] = {}
        self.columns = {name: np.full(16, value, dtype=float) for name, value in defaults.items()}
        self._last_keys: list[str] | None = None
        self._last_rows: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.index)

    def rows(self, keys: list[str]) -> np.ndarray:
        """Row numbers of `keys`, adding rows for keys not seen before."""
        if keys is self._last_keys or keys == self._last_keys:
            return self._last_rows
        index = self.index
        missing = [k for k in keys if k not in index]
        for k in missing:
            index[k] = len(index)
        if len(index) > len(next(iter(self.columns.values()), ())):
            self._grow(len(index))
        rows = np.fromiter((index[k] for k in keys), dtype=np.int64, count=len(keys))
        self._last_keys, self._last_rows = list(keys), rows
        return rows

    def _grow(self, need: int) -> None:
        size = max(need, 2 * len(next(iter(self.columns.values()))))
        for name, col in self.columns.items():
            grown = np.full(size, self.defaults[name], dtype=float)
            grown[:len(col)] = col
            self.columns[name] = grown

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def forget(self, keys) -> None:
        """Drop the rows of `keys` (series the daemon no longer sees); the rest are renumbered."""
        gone = {k for k in keys if k in self.index}
        if not gone:
            return
        kept = [(k, r) for k, r in self.index.items() if k not in gone]
        rows = np.fromiter((r for _, r in kept), dtype=np.int64, count=len(kept))
        self.index = {k: i for i, (k, _) in enumerate(kept)}
        for name, col in self.columns.items():
            fresh = np.full(max(16, len(kept)), self.defaults[name], dtype=float)
            fresh[:len(kept)] = col[rows]
            self.columns[name] = fresh
        self._last_keys = self._last_rows = None


class ModelRows:
    """Each key's row in a fitted model's `index` (-1: not covered). A tick usually brings the
    same keys as the last one (the same string objects): one list comparison instead of n
    look-ups, until the keys or the model change."""

    def __init__(self):
        self._last: tuple = (None, [], None)  # (model, keys, their rows) of the last call

    def of(self, model, keys: list[str]) -> np.ndarray:
        last_model, last_keys, rows = self._last
        if last_model is model and last_keys == keys:
            return rows
        rows = np.fromiter((model.index.get(k, -1) for k in keys), dtype=np.int64, count=len(keys))
        self._last = (model, list(keys), rows)
        return rows
