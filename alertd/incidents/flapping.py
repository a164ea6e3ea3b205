"""Flap detection, Sensu/Nagios style: percent state change over the last evaluations.

Each evaluation of a series (an anomalous or a normal point) is one bit of history, newest
in bit 0. The percent state change weighs each change between neighbouring evaluations
from 0.8 (oldest) to 1.2 (newest), so recent churn counts more, and divides by the number
of possible changes in a full window. A series starts flapping when the percentage reaches
`high` and stops when it falls below `low` (hysteresis).
"""

from __future__ import annotations

from functools import lru_cache

from ..config.types import FlapSettings


@lru_cache(maxsize=16)
def _weights(window: int) -> tuple[float, ...]:
    """Weight of the change between evaluation k and k+1 (k=0 newest), newest weighs 1.2."""
    changes = window - 1
    if changes == 1:
        return (1.0,)
    return tuple(1.2 - 0.4 * k / (changes - 1) for k in range(changes))


def push(history: int, evaluations: int, anomalous: bool, window: int) -> tuple[int, int]:
    """History with one more evaluation (newest in bit 0), capped at `window` bits."""
    history = ((history << 1) | int(anomalous)) & ((1 << window) - 1)
    return history, min(evaluations + 1, window)


def fill_gap(history: int, evaluations: int, gap: float, settings: FlapSettings) -> tuple[int, int]:
    """History with the evaluations missed in a `gap` of seconds since the last one (alertd
    down, the source failing) filled in as repeats of the last state: `settings.interval`
    apart, so a gap of about one interval misses none. Without it, the changes before and
    after a restart would weigh as neighbours and a series could be called flapping."""
    missed = max(min(int(gap / settings.interval + 0.5) - 1, settings.window), 0)
    fill = (1 << missed) - 1 if history & 1 else 0  # `missed` copies of the last bit
    return ((history << missed) | fill) & ((1 << settings.window) - 1), min(evaluations + missed, settings.window)


def percent_state_change(history: int, evaluations: int, window: int) -> float:
    """Weighted percent of state changes in the history (0 with fewer than 2 evaluations)."""
    if evaluations < 2:
        return 0.0
    changes = (history ^ (history >> 1)) & ((1 << (evaluations - 1)) - 1)
    if not changes:
        return 0.0
    weights = _weights(window)
    total, k = 0.0, 0
    while changes:
        if changes & 1:
            total += weights[k]
        changes >>= 1
        k += 1
    return 100.0 * total / (window - 1)
