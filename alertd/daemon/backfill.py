"""Back-fill: history loaded once per rule at start (and for rules a reload adds), so
detectors need no warm-up."""

from __future__ import annotations

import asyncio

from ..config.history import need_of
from ..model import Sample

CHUNK_POINTS = 10_000  # at most this many points of each series per back-fill call
FIRST_POINTS = 10  # the first call's points per series: its size tells how many series there are
CALL_SAMPLES = 100_000  # samples a call, about: the loop pauses for well under a second (bench/backfill.py)


async def backfill(daemon) -> None:
    """Load history once per rule so detectors skip warm-up (on first start, new rules).

    Each rule is remembered in the store's kv under its source, name and selector, so a
    rule added later (or changed to read other series) gets its own back-fill. The span is
    what the rules' detectors read (their training plans: a weekly baseline's weeks, a
    model's training points at the source's interval; alertd/config/history.py), never
    more than `retention`. It is fetched in chunks, oldest first, each stored before the next
    is asked for, with the loop free between chunks: a chunk holds about CALL_SAMPLES samples
    (the first, of FIRST_POINTS points, tells how many series answer; at most CHUNK_POINTS
    points per series), so memory and the loop's pauses stay bounded whether the source has
    one series or 10,000. Only samples of series the store does not have yet, or newer than
    the last stored point (a gap while the daemon was down), are ingested: nothing is stored
    twice. `daemon.progress_hook(text)`, when set, is told after every chunk (the lifecycle
    extends systemd's start-up timeout with it: a long back-fill is progress, not a hang).
    """
    now = daemon.clock.now()
    for name, sc in daemon.config.sources.items():
        if not sc.backfill:
            continue
        todo = [rt for rt in daemon.engine.rules_by_source.get(name, [])
                if not daemon.store.get_kv(_backfill_key(name, rt.rule))]
        span = min(max([history_span(rt, sc) for rt in todo] or [0.0]), daemon.config.retention)
        if span > 0:
            stored = await _fetch(daemon, name, sc, todo, now - span, now)
            if stored is None:
                continue  # failed: logged; tried again at the next start
            if stored:
                daemon.log.info("backfilled", source=name, samples=stored, seconds=round(span),
                                rules=[rt.rule.name for rt in todo])
        for rt in todo:
            daemon.store.set_kv(_backfill_key(name, rt.rule), now)


async def _fetch(daemon, name: str, sc, todo, start: float, end: float) -> int | None:
    """Ask the source for [start, end) in chunks and ingest each; the samples stored, or None
    when a call failed."""
    every = sc.every or 60.0
    points, stored, at, keys = FIRST_POINTS, 0, start, {}
    while at < end:
        upto = min(end, at + points * every)
        try:
            samples = await asyncio.wait_for(daemon.sources[name].backfill(at, upto), sc.timeout)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            daemon.log.warning("backfill_failed", source=name, error=error[:300])
            return None
        got = len(samples or ())
        await asyncio.sleep(0)  # the source's own work (parsing) and ours are two pauses, not one
        samples = _unstored(daemon.store, samples, todo, name, keys)
        for part in _pieces(samples, CALL_SAMPLES):  # (a chunk larger than planned: in pieces)
            async with daemon.tick_lock:  # not between the slices of a poll's tick
                daemon.engine.ingest(name, part, alerts=False)
            stored += len(part)
            await asyncio.sleep(0)  # the HTTP server and the watchdog between pieces
        points = next_points(points, got, (upto - at) / every)
        at = upto
        if daemon.progress_hook is not None:
            left = max(0.0, end - at) / 3600
            daemon.progress_hook(f"back-filling {name}: {stored} samples stored, {left:.1f} h to go")
    return stored


def next_points(points: int, got: int, asked: float) -> int:
    """Points per series for the next call: CALL_SAMPLES at the rate the last call answered
    (samples a point of time: the number of series), doubling while calls come back empty
    (history that starts later), within [1, CHUNK_POINTS]."""
    if got <= 0:
        return min(CHUNK_POINTS, points * 2)
    per_point = got / max(asked, 1.0)
    return max(1, min(CHUNK_POINTS, int(CALL_SAMPLES / per_point)))


def _pieces(samples: list, most: int):
    """`samples` in pieces of at most about `most`, split between timestamps, oldest first
    (a poll's points of one time stay together)."""
    if len(samples) <= most:
        if samples:
            yield samples
        return
    samples = sorted(samples, key=lambda s: s.ts)
    begin = 0
    while begin < len(samples):
        end = min(len(samples), begin + most)
        while end < len(samples) and samples[end].ts == samples[end - 1].ts:
            end += 1
        yield samples[begin:end]
        begin = end


def _unstored(store, samples, runtimes, source: str, keys: dict) -> list:
    """The back-filled samples the rules in `runtimes` read and the store lacks. `keys`
    remembers, for the whole back-fill, each series' key, or None when no rule reads it: the
    selectors and the key are worked out once a series, not once a point (they were 4.8 us
    of the loop's time a sample, more than storing it)."""
    selectors = [rt.rule.series for rt in runtimes]
    wanted = []
    for s in samples or ():
        if not isinstance(s, Sample):
            continue
        series = (s.name, s.labels)
        key = keys.get(series, False)
        if key is False:
            key = keys[series] = s.key if any(sel.matches(s.name, dict(s.labels)) for sel in selectors) else None
        if key is not None:
            wanted.append((s, key))
    stored = store.samples.recent(list({key for _, key in wanted}), 1, source=source)
    return [s for s, key in wanted if key not in stored or s.ts > stored[key][0][-1]]


def history_span(rt, sc) -> float:
    """Seconds of history a rule's detector reads (window, warm-up, training plan), with a
    fifth more for gaps in the data."""
    need = need_of(rt.rule, type(rt.detector), sc.every or 60.0)
    return 1.2 * need.wanted if need is not None else 0.0


def _backfill_key(source: str, rule) -> str:
    return f"backfilled:{source}:{rule.name}:{rule.series}"
