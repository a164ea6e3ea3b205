"""Forgetting series: the engine's memory follows the series that still exist.

A series silent for longer than `retention` (no poll brought it) is dropped from every
rule's windows, from the detector's per-series state and from the recent detections, unless
an incident of it is still tracked (it resolves first, by `no_data` or as a missing series;
an `absent` rule's incident resolves as "forgotten" once its series is silent that long,
alertd/engine/absence.py).
The store drops its rows at the same time (`SampleStore.drop_silent`); the daemon's prune
job runs both. Without this, a source with churning labels (pods, request ids, SKUs that
come and go) would grow memory and the store without bound.
"""

from __future__ import annotations

import numpy as np


def drop_silent(engine, before: float) -> dict[str, tuple[np.ndarray, list[str]]]:
    """Forget the series not polled since `before` (daemon clock); per rule that dropped
    some, the rows kept (old numbers, ascending) and the keys dropped."""
    out = {}
    for rt in engine.runtimes():
        kept, dropped = rt.drop_silent(before)
        if not dropped:
            continue
        out[rt.rule.name] = (kept, dropped)
        engine.detections.forget_keys(rt.rule.name, dropped)
        try:
            rt.detector.forget_series(dropped)
        except Exception as exc:  # a plugin's bug must not stop the prune; its memory stays
            engine.log.error("detector_forget_failed", rule=rt.rule.name, error=f"{type(exc).__name__}: {exc}")
    return out
