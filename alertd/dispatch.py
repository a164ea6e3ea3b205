"""The outbox worker: sends committed notifications, retrying with backoff and jitter.

At-least-once: a row is only marked sent after the notifier returned, so a crash between
sending and marking re-sends it on start (receivers get the idempotency key to de-duplicate).
Retryable failures are retried with exponential backoff (capped, with jitter) honouring a
receiver's Retry-After; permanent failures are recorded and not retried.
"""

from __future__ import annotations

import asyncio
import random

from .base import DeliveryError


class Dispatcher:
    """Delivers due outbox rows through the receivers' notifier instances."""

    def __init__(self, store, notifiers, clock, metrics, log, *, base_delay: float = 2.0,
                 max_delay: float = 300.0, rng: random.Random | None = None):
        self.store, self.notifiers, self.clock = store, notifiers, clock
        self.metrics, self.log = metrics, log
        self.base_delay, self.max_delay = base_delay, max_delay
        self.rng = rng or random.Random()
        self.wakeup = asyncio.Event()
        self.lock = asyncio.Lock()  # held while sending: a reload closes old notifiers after it

    def backoff(self, attempts: int, retry_after: float | None = None) -> float:
        """Seconds before the next attempt: exponential with full jitter, or Retry-After."""
        delay = min(self.max_delay, self.base_delay * (2 ** attempts))
        delay = delay / 2 + self.rng.uniform(0, delay / 2)
        if retry_after is not None:
            delay = max(delay, float(retry_after))
        return delay

    async def run_once(self) -> int:
        """Send every row due now; returns how many were delivered."""
        delivered = 0
        async with self.lock:
            rows = self.store.outbox.due(self.clock.now())
            for row in rows:
                delivered += await self._deliver(row)
        self.metrics.outbox_depth.set(self.store.outbox.pending_count())
        return delivered

    async def _deliver(self, row) -> int:
        notifier = self.notifiers.get((row.receiver, row.integration))
        now = self.clock.now()
        if notifier is None:
            error = (f'the receiver "{row.receiver}" has no integration #{row.integration} any more; '
                     "the notification was dropped")
            self.store.outbox.mark_failed(row.id, now, error)
            self.log.error("notification_failed", receiver=row.receiver, outbox_id=row.id, error=error)
            return 0
        log = self.log.bind(receiver=row.receiver, notifier=row.notifier, outbox_id=row.id,
                            kind=row.notification.kind)
        try:
            answer = await notifier.send(row.notification)
        except DeliveryError as exc:
            reason = "retryable" if exc.retryable else "permanent"
            self.metrics.notifications_failed.labels(row.receiver, row.notifier, reason).inc()
            if exc.retryable:
                next_at = now + self.backoff(row.attempts, exc.retry_after)
                self.store.outbox.mark_retry(row.id, next_at, str(exc))
                log.warning("notification_retry", error=str(exc), attempts=row.attempts + 1,
                            retry_in=round(next_at - now, 1))
            else:
                self.store.outbox.mark_failed(row.id, now, str(exc))
                log.error("notification_failed", error=str(exc))
            return 0
        except Exception as exc:  # a notifier bug: retry later, never crash the loop
            self.metrics.notifications_failed.labels(row.receiver, row.notifier, "error").inc()
            next_at = now + self.backoff(row.attempts)
            self.store.outbox.mark_retry(row.id, next_at, f"{type(exc).__name__}: {exc}")
            log.error("notification_error", error=f"{type(exc).__name__}: {exc}")
            return 0
        self.store.outbox.mark_sent(row.id, self.clock.now(), str(answer or "ok"))
        self.metrics.notifications_sent.labels(row.receiver, row.notifier).inc()
        log.info("notification_sent", answer=str(answer or "ok")[:200])
        return 1

    async def run_forever(self, stopping: asyncio.Event, idle: float = 1.0) -> None:
        """Deliver until `stopping` is set, waking on new rows or when a retry is due."""
        while not stopping.is_set():
            await self.run_once()
            next_due = self.store.outbox.next_due_at()
            wait = idle if next_due is None else max(0.05, min(idle, next_due - self.clock.now()))
            self.wakeup.clear()
            try:
                await asyncio.wait_for(self.wakeup.wait(), timeout=wait)
            except asyncio.TimeoutError:
                pass
