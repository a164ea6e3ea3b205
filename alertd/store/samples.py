"""Series and their recent samples (bounded retention)."""

from __future__ import annotations

import json

import numpy as np

from ..model import Labels, Sample


class SampleStore:
    """Append samples, read the recent history of series, prune old samples."""

    def __init__(self, db):
        self.db = db
        self._ids: dict[str, int] = {}

    def series_ids(self, samples: list[Sample], source: str) -> list[int]:
        """The id of each sample's series, creating series rows for new keys."""
        keys = [s.key for s in samples]
        missing = {k: s for k, s in zip(keys, samples) if k not in self._ids}
        if missing:
            self._load_ids(list(missing))
            new = [s for k, s in missing.items() if k not in self._ids]
            if new:
                self.db["series"].insert_all(
                    ({"key": s.key, "name": s.name, "labels": json.dumps(dict(s.labels)),
                      "source": source, "first_ts": s.ts} for s in new), ignore=True)
                self._load_ids([s.key for s in new])
        return [self._ids[k] for k in keys]

    def _load_ids(self, keys: list[str]) -> None:
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            marks = ",".join("?" * len(chunk))
            for row in self.db.execute(f"SELECT id, key FROM series WHERE key IN ({marks})", chunk):
                self._ids[row[1]] = row[0]

    def append(self, samples: list[Sample], source: str) -> None:
        """Store samples (call inside `Store.atomic()` to group a tick in one transaction)."""
        if not samples:
            return
        ids = self.series_ids(samples, source)
        self.db.conn.executemany("INSERT INTO samples (series_id, ts, value) VALUES (?, ?, ?)",
                                 [(i, s.ts, s.value) for i, s in zip(ids, samples)])

    def recent(self, keys: list[str], limit: int, before: float | None = None):
        """Up to `limit` latest (ts, value) per series key, oldest first, and the total count.

        Returns {key: (ts array, value array, total points stored)} for keys that have data.
        """
        self._load_ids([k for k in keys if k not in self._ids])
        out = {}
        by_id = {self._ids[k]: k for k in keys if k in self._ids}
        ids = list(by_id)
        cutoff = float("inf") if before is None else before
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
                f"""SELECT series_id, ts, value, n FROM (
                      SELECT series_id, ts, value,
                             ROW_NUMBER() OVER (PARTITION BY series_id ORDER BY ts DESC) AS rn,
                             COUNT(*) OVER (PARTITION BY series_id) AS n
                      FROM samples WHERE series_id IN ({marks}) AND ts < ?)
                    WHERE rn <= ? ORDER BY series_id, ts""", [*chunk, cutoff, limit]).fetchall()
            grouped: dict[int, list] = {}
            for sid, ts, value, n in rows:
                grouped.setdefault(sid, []).append((ts, value, n))
            for sid, items in grouped.items():
                arr = np.array([(t, v if v is not None else np.nan) for t, v, _ in items], dtype=float)
                out[by_id[sid]] = (arr[:, 0], arr[:, 1], items[0][2])
        return out

    def history(self, key: str, start: float | None = None, end: float | None = None):
        """All stored (ts, value) of one series in [start, end), as two arrays."""
        self._load_ids([key])
        sid = self._ids.get(key)
        if sid is None:
            return np.array([]), np.array([])
        rows = self.db.execute(
            "SELECT ts, value FROM samples WHERE series_id = ? AND ts >= ? AND ts < ? ORDER BY ts",
            [sid, start if start is not None else -np.inf, end if end is not None else np.inf]).fetchall()
        arr = np.array(rows, dtype=float).reshape(-1, 2)
        return arr[:, 0], arr[:, 1]

    def series(self) -> list[dict]:
        """All known series: key, name, labels, source."""
        return [dict(r, labels=json.loads(r["labels"])) for r in self.db["series"].rows]

    def labels_of(self, key: str) -> Labels:
        row = next(self.db["series"].rows_where("key = ?", [key]), None)
        return tuple(sorted(json.loads(row["labels"]).items())) if row else ()

    def prune(self, before: float) -> int:
        """Delete samples older than `before`; returns how many."""
        cursor = self.db.execute("DELETE FROM samples WHERE ts < ?", [before])
        return cursor.rowcount
