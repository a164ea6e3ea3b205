"""Silences in the store: rows in, rows out (the rules live in alertd/routing/silences.py)."""

from __future__ import annotations


class SilenceStore:
    """Insert, update and query silence rows."""

    def __init__(self, db):
        self.db = db

    def insert(self, row: dict) -> None:
        self.db["silences"].insert(row)

    def update(self, silence_id: str, values: dict) -> None:
        self.db["silences"].update(silence_id, values)

    def rows(self, *, ending_after: float | None = None) -> list[dict]:
        """Every silence (or those ending after a time), newest first."""
        where, params = (None, []) if ending_after is None else ("ends_at > ?", [ending_after])
        return list(self.db["silences"].rows_where(where, params, order_by="created_at desc, id"))

    def by_prefix(self, prefix: str) -> list[dict]:
        return list(self.db["silences"].rows_where("id LIKE ?", [prefix.replace("%", "") + "%"]))

    def version(self) -> tuple:
        """Changes whenever a silence is added or changed (cheap cache check)."""
        return tuple(self.db.execute("SELECT COUNT(*), MAX(updated_at), TOTAL(ends_at), TOTAL(starts_at) "
                                     "FROM silences").fetchone())
