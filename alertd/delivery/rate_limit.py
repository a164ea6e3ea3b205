"""A token bucket per receiver integration: `rate` notices per `per`, bursts up to `burst`."""

from __future__ import annotations


class TokenBucket:
    """Starts full; refills continuously at `rate_per_s` up to `capacity` tokens."""

    def __init__(self, rate_per_s: float, capacity: int, now: float):
        self.rate, self.capacity = float(rate_per_s), int(capacity)
        self.tokens, self.updated = float(capacity), now

    def _refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now

    def available(self, now: float) -> int:
        """Whole tokens available now."""
        self._refill(now)
        return int(self.tokens + 1e-9)

    def take(self, now: float) -> bool:
        """Spend one token if there is one."""
        self._refill(now)
        if self.tokens + 1e-9 >= 1:
            self.tokens = max(0.0, self.tokens - 1)
            return True
        return False

    def next_at(self, now: float) -> float:
        """When the next whole token is available."""
        self._refill(now)
        missing = max(0.0, 1 - self.tokens)
        return now + missing / self.rate
