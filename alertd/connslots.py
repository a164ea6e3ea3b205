"""Connection slots for alertd's hand-written HTTP servers: a cap, deadlines, shedding the slowest.

One slot per open connection, at most `limit`. A connection is `idle` (kept alive, waiting
for the next request), `reading` (a request has begun to arrive), `busy` (its request is
being answered) or `sending` (its answer waits for the client to read it). When all slots
are taken, a new connection takes the slot of the connection that has been waiting on its
client (idle, reading or sending) for longest, which is closed; only when every slot is
busy answering is the newcomer refused (503). So
slow or silent connections (a "slowloris" sending a header line every few seconds) can hold
slots only until someone else needs them, and cannot lock out `/healthz` or a push.

Deadlines are per request, not per read: a request's head must be complete within
`head_timeout` of its first byte, the whole request within `request_timeout`
(`Deadline.remaining` tells a read how long it may wait).
"""

from __future__ import annotations

import asyncio
import time


class Deadline:
    """When a request must be complete; `remaining()` is what a read may wait (>= 0)."""

    def __init__(self, seconds: float, clock=time.monotonic):
        self.clock = clock
        self.at = clock() + seconds

    def remaining(self) -> float:
        return max(0.0, self.at - self.clock())

    def tighten(self, seconds: float) -> None:
        """Make the deadline no later than `seconds` from now."""
        self.at = min(self.at, self.clock() + seconds)


class Slots:
    """The connections of one server; see the module docstring."""

    def __init__(self, limit: int, clock=time.monotonic):
        self.limit = limit
        self.clock = clock
        self._state: dict[asyncio.Task, tuple[str, float]] = {}
        self.shed = 0  # connections closed to make room (for metrics and tests)
        self.refused = 0

    def __len__(self) -> int:
        return len(self._state)

    def admit(self, task: asyncio.Task) -> bool:
        """Give `task` a slot, closing the slowest idle or reading connection if need be;
        False when every slot is busy answering a request."""
        if len(self._state) >= self.limit:
            waiting = [(since, t) for t, (state, since) in self._state.items() if state != "busy"]
            if not waiting:
                self.refused += 1
                return False
            _, victim = min(waiting, key=lambda item: item[0])
            self._state.pop(victim)
            victim.cancel()
            self.shed += 1
        self._state[task] = ("idle", self.clock())
        return True

    def set(self, task: asyncio.Task, state: str) -> None:
        """Move `task` to `idle`, `reading`, `busy` or `sending` (from now)."""
        if task in self._state and self._state[task][0] != state:
            self._state[task] = (state, self.clock())

    def release(self, task: asyncio.Task) -> None:
        self._state.pop(task, None)
