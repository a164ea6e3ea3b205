"""The delivery ledger: one row per delivery attempt of an outbox row (and per fold)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Attempt:
    """One attempt: when, the outcome (sent, retry, failed, gave_up, folded) and the detail."""

    outbox_id: int
    idempotency_key: str
    receiver: str
    integration: int
    notifier: str
    kind: str
    attempt: int
    at: float
    outcome: str
    error: str | None = None
    answer: str | None = None
    duration_ms: float | None = None


class Ledger:
    """Append attempts; list them for `alertd notifications`."""

    def __init__(self, db):
        self.db = db

    def record(self, attempts: list[Attempt]) -> None:
        if attempts:
            self.db["deliveries"].insert_all(
                [{**a.__dict__, "error": (a.error or None) and a.error[:500],
                  "answer": (a.answer or None) and a.answer[:500]} for a in attempts])

    def of(self, outbox_id: int) -> list[Attempt]:
        return [self._attempt(r) for r in self.db["deliveries"].rows_where(
            "outbox_id = ?", [outbox_id], order_by="id")]

    def recent(self, limit: int = 100, failed_only: bool = False) -> list[Attempt]:
        where = "outcome != 'sent'" if failed_only else None
        return [self._attempt(r) for r in self.db["deliveries"].rows_where(
            where, order_by="id desc", limit=limit)]

    @staticmethod
    def _attempt(r: dict) -> Attempt:
        return Attempt(r["outbox_id"], r["idempotency_key"], r["receiver"], r["integration"],
                       r["notifier"], r["kind"], r["attempt"], r["at"], r["outcome"], r["error"],
                       r["answer"], r["duration_ms"])
