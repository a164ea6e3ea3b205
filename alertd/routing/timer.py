"""The group timer: the one driver of group flushes (Alertmanager's aggregation-group timers).

Ticks put incidents into groups (`Router.route`); this task flushes each group when its
timer is due (`group_wait` after it was made, then every `group_interval`), which queues
notices in the outbox, and then wakes the delivery worker through `on_queued`. A tick
that changed groups wakes it at once (`wake`), so `group_wait: 0` notifies in the same
turn of the loop. Nothing else flushes groups.

All timers are in the store, so the task keeps no state of its own: after a restart or a
reload (`use(router)`) it simply looks for the next due group again.
"""

from __future__ import annotations

import asyncio

from ..store.errors import explain, is_store_error


class GroupTimer:
    """Flushes due alert groups of `router` and tells `on_queued` when notices were queued."""

    def __init__(self, router, clock, log, on_queued=None, idle: float = 1.0, before=None, before_at=None):
        self.router, self.clock, self.log = router, clock, log
        self.on_queued = on_queued or (lambda: None)
        # `before(now)` runs ahead of each pass's flushes, and `before_at()` says when it is
        # next due: the alert intake resolves posted alerts whose endsAt passed, so a flush
        # at that moment sees them resolved, as Alertmanager's does
        self.before, self.before_at = before, before_at
        self.idle = idle  # longest sleep: timers set by another process or a clock step are seen
        self._wakeup = asyncio.Event()

    def use(self, router) -> None:
        """Flush `router`'s groups from now on (a reload rebuilt the router)."""
        self.router = router
        self.wake()

    def wake(self) -> None:
        """Look at the timers now (a tick changed groups, an action changed incidents)."""
        self._wakeup.set()

    def pending(self) -> bool:
        """Whether a wake-up waits for the task's next pass."""
        return self._wakeup.is_set()

    def flush_due(self) -> int:
        """Flush every due group now; returns the outbox rows queued."""
        if self.before is not None:
            self.before(self.clock.now())
        queued = self.router.flush_due(self.clock.now())
        if queued:
            self.on_queued()
        return queued

    def next_at(self) -> float | None:
        """When the earliest group timer (or `before`) is due (None: nothing is)."""
        times = [self.router.next_flush_at(), self.before_at() if self.before_at is not None else None]
        times = [t for t in times if t is not None]
        return min(times) if times else None

    async def run_forever(self, stopping: asyncio.Event) -> None:
        """Flush due groups until `stopping` is set; a store error is logged and retried."""
        while not stopping.is_set():
            self._wakeup.clear()  # before the pass: a wake during it means "look again"
            try:
                self.flush_due()
                due = self.next_at()
            except Exception as exc:  # keep the timers running whatever one pass hit
                due = None
                if is_store_error(exc):
                    self.log.error("group_flush_failed", error=explain(exc, getattr(self.router.store, "path", "")),
                                   retry=f"in {self.idle:g}s")
                else:
                    self.log.exception("group_flush_failed", error=f"{type(exc).__name__}: {exc}")
            # (a group still due right after its flush waits a moment: never a busy loop)
            wait = self.idle if due is None else max(0.01, min(self.idle, due - self.clock.now()))
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout=wait)
            except asyncio.TimeoutError:
                pass
