"""Clock steps: when the wall clock jumps back (an NTP step, a fixed RTC), timers follow it.

Timers are stored as wall-clock times (so they survive restarts): a group's next flush, the
time of its last notice (for `repeat_interval`), each outbox row's next attempt. A forward
step needs nothing: a due timer fires once at the next pass, never once per missed interval.
A backward step of an hour would hold every one of them back by an hour; so the daemon
checks the clock every second, and when it went back moves them back by the same amount,
keeping each timer's remaining wait (the delivery worker's in-memory holds too, through
`OutboxWorker.shift`). Silences keep their absolute end (a silence until 14:00 ends at 14:00).
"""

from __future__ import annotations


class ClockStepGuard:
    """Watches the clock between checks and undoes a backward step for the stored timers."""

    def __init__(self, store, log, tolerance: float = 1.0):
        self.store, self.log, self.tolerance = store, log, tolerance
        self.last: float | None = None

    def check(self, now: float) -> float:
        """The backward step seen since the last call (0.0 if none); stored timers are shifted
        by it, and the caller shifts what it keeps in memory."""
        last, self.last = self.last, now
        if last is None or now >= last - self.tolerance:
            return 0.0
        step = now - last  # negative
        with self.store.atomic():
            self.store.groups.shift_timers(step)
            self.store.outbox.shift_pending(step)
        self.log.warning("clock_stepped_back", seconds=round(-step, 3),
                         note="group timers and retries were moved back by the same amount")
        return step
