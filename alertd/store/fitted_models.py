"""Fitted detector models, persisted so a restart does not start warm-up again."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StoredModel:
    """A model row: which rule and detector version it belongs to, and its serialised bytes."""

    rule: str
    detector: str
    version: str
    fitted_at: float
    saved_at: float
    series: int
    train_rows: int
    fit_seconds: float
    size: int
    blob: bytes
    params: str = ""  # the detector's params (JSON) the model was fitted with


class ModelStore:
    """Save and load the latest fitted model of each rule."""

    def __init__(self, db):
        self.db = db

    def save(self, model: StoredModel) -> None:
        """Insert or replace the rule's model (one row per rule)."""
        row = dict(model.__dict__)
        row["format"] = 1
        self.db["models"].upsert(row, pk="rule")

    def load(self, rule: str) -> StoredModel | None:
        rows = list(self.db["models"].rows_where("rule = ?", [rule]))
        if not rows:
            return None
        row = rows[0]
        row.pop("format", None)
        return StoredModel(**row)

    def list(self) -> list[dict]:
        """Every stored model without its bytes (for status pages and `alertd` commands)."""
        return list(self.db["models"].rows_where(
            select="rule, detector, version, params, fitted_at, saved_at, series, train_rows, fit_seconds, size",
            order_by="rule"))

    def delete(self, rule: str) -> None:
        self.db["models"].delete_where("rule = ?", [rule])
