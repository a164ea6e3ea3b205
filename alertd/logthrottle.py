"""Log lines with a budget: at most one line per cause per interval, with a count of the rest.

A flood of bad requests, refused series or refused points must not become a flood of log
lines (190,000 lines for one push filled a disk). `LogThrottle.allow(key)` says whether a line
for `key` may be written now; it returns how many were held back since the last one (to put
in the line), or None while the interval has not passed.

    throttle = LogThrottle(every=60)
    held = throttle.allow(("push_rejected", 400))
    if held is not None:
        log.warning("push_rejected", status=400, error=..., similar_before=held)
"""

from __future__ import annotations

import time


class LogThrottle:
    """One line per key every `every` seconds (the first at once); see the module docstring."""

    def __init__(self, every: float = 60.0, clock=time.monotonic, max_keys: int = 1000):
        self.every, self.clock, self.max_keys = every, clock, max_keys
        self._last: dict = {}  # key -> (time of the last line, lines held back since)

    def allow(self, key) -> int | None:
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last[0] < self.every:
            self._last[key] = (last[0], last[1] + 1)
            return None
        if last is None and len(self._last) >= self.max_keys:  # keys from data: stay bounded
            self._last.clear()
        self._last[key] = (now, 0)
        return last[1] if last is not None else 0
