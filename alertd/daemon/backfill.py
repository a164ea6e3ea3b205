"""Back-fill: history loaded once per rule at start (and for rules a reload adds), so
detectors need no warm-up."""

from __future__ import annotations

import asyncio

from ..model import Sample


async def backfill(daemon) -> None:
    """Load history once per rule so detectors skip warm-up (on first start, new rules).

    Each rule is remembered in the store's kv under its source, name and selector, so a
    rule added later (or changed to read other series) gets its own back-fill. Only
    samples of series the store does not have yet, or newer than the last stored point
    (a gap while the daemon was down), are ingested: nothing is stored twice.
    """
    now = daemon.clock.now()
    for name, sc in daemon.config.sources.items():
        if not sc.backfill:
            continue
        todo = [rt for rt in daemon.engine.rules_by_source.get(name, [])
                if not daemon.store.get_kv(_backfill_key(name, rt.rule))]
        points = max([_history_wanted(rt.detector) for rt in todo] or [0])
        if points:
            span = points * (sc.every or 60) * 1.2
            try:
                samples = await asyncio.wait_for(daemon.sources[name].backfill(now - span, now),
                                                 sc.timeout)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                daemon.log.warning("backfill_failed", source=name, error=error[:300])
                continue
            samples = _unstored(daemon.store, samples, todo, name)
            if samples:
                daemon.engine.ingest(name, samples, alerts=False)
                daemon.log.info("backfilled", source=name, samples=len(samples),
                            rules=[rt.rule.name for rt in todo])
        for rt in todo:
            daemon.store.set_kv(_backfill_key(name, rt.rule), now)


def _unstored(store, samples, runtimes, source: str) -> list:
    """The back-filled samples the rules in `runtimes` read and the store lacks."""
    selectors = [rt.rule.series for rt in runtimes]
    wanted = [s for s in samples or () if isinstance(s, Sample)
              and any(sel.matches(s.name, dict(s.labels)) for sel in selectors)]
    stored = store.samples.recent(list({s.key for s in wanted}), 1, source=source)
    return [s for s in wanted if s.key not in stored or s.ts > stored[s.key][0][-1]]


def _history_wanted(detector) -> int:
    """Points of history a detector wants on first start: its window and warm-up, and for a
    trainable one the history it fits on (capped, so start-up stays quick)."""
    plan = detector.training_plan() if getattr(detector, "trainable", False) else None
    return max(detector.window, detector.min_history, min(plan.points, 10_000) if plan else 0)


def _backfill_key(source: str, rule) -> str:
    return f"backfilled:{source}:{rule.name}:{rule.series}"
