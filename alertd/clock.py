"""Clocks: the daemon reads time only through one, so tests and backtests control it."""

from __future__ import annotations

import time


class SystemClock:
    """Wall-clock time in epoch seconds."""

    def now(self) -> float:
        return time.time()


class FakeClock:
    """A clock that moves only when told to: for tests and replays."""

    def __init__(self, start: float = 1_700_000_000.0):
        self.t = float(start)

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> float:
        self.t += seconds
        return self.t

    def set(self, t: float) -> None:
        self.t = float(t)
