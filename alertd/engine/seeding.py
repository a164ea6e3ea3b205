"""A poll's new series get their windows from the store, read off the event loop.

The first poll after a start (or the first with new series) must fill each new series'
window with its stored history before scoring, so that a restart does not warm up again:
at 10,000 series that is a read of 300,000 points, about 1.4 s. On the loop, it stalled
everything else for that long (pages, deliveries, the group timer). So the daemon's tick
reads them in a thread of its own on a read connection of its own (SQLite's WAL lets it read
beside the daemon's writes) and waits with the loop free (a `Pause` of the tick, as for a
detector call); the rows are added once the read is back, on the loop, with exactly the
points the read on the loop would have given: the tick holds the tick lock throughout, so
nothing else changes the windows meanwhile, and only points before the poll's own are read.
`Engine.ingest` (back-fills, replays) and an in-memory store read at once, as before.

Rules of one source often share their series: one read serves them all (the longest
window), each rule keeping its own number of latest points.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ..model import fingerprint
from ..store import StoreReader

_executor: ThreadPoolExecutor | None = None


@dataclass
class SeedPlan:
    """One rule's new series in a poll: {key: its first sample}, the time before which
    history is read, how many points its window wants, and the poll's key list."""

    rt: object
    new: dict
    before: float
    need: int
    keys: list
    blocks: tuple = ()  # see _blocks


def plan(rt, samples, keys: list[str]) -> SeedPlan | None:
    """The new series of rule `rt` in a poll (None: none, and the key list is remembered)."""
    if keys is rt.seeded_keys:  # the key list of the last poll: nothing new
        return None
    rows = rt.windows.rows
    new = {k: s for s, k in zip(samples, keys) if k not in rows}
    if not new:
        rt.seeded_keys = keys
        return None
    need = max(rt.windows.window, getattr(rt.detector, "min_history", 0))
    return SeedPlan(rt, new, min(s.ts for s in new.values()), need, keys)


def read(samples, plans: list[SeedPlan]) -> None:
    """Read each plan's history from `samples` (a SampleStore) and prepare its `blocks`."""
    groups = [(p.rt.rule.source, p.before, tuple(p.new)) for p in plans]
    need = {}
    for g, p in zip(groups, plans):
        need[g] = max(need.get(g, 0), p.need)
    got = {}
    for g, p in zip(groups, plans):
        if g not in got:
            got[g] = samples.recent(list(p.new), need[g], before=p.before, source=p.rt.rule.source)
        p.blocks = _blocks(p, got[g])


def _blocks(p: SeedPlan, stored: dict) -> tuple:
    """What `apply` loads into the new rows, worked out beside the loop: each new series'
    fingerprint, and (ts, values, seen) as blocks of the window's width, right-aligned (a
    rule of the same series with a shorter `need` keeps its own number of latest points)."""
    rt = p.rt
    width = rt.windows.window
    n = len(p.new)
    ts, values = np.full((n, width), np.nan), np.full((n, width), np.nan)
    seen = np.zeros(n, dtype=np.int64)
    for i, key in enumerate(p.new):
        got = stored.get(key)
        if got is None:
            continue
        t, v, count = got
        t, v = t[-p.need:], v[-p.need:]
        seen[i] = min(count, p.need)
        k = min(len(t), width)
        if k:
            ts[i, -k:], values[i, -k:] = t[-k:], v[-k:]
    fps = [fingerprint(rt.rule.name, s.labels) for s in p.new.values()]
    return fps, ts, values, seen


class SeedRead:
    """The read of a poll's new series: under way in the seeding thread (`wait()` lets the
    loop run until it is back), or done at once (`future` None)."""

    def __init__(self, store, plans: list[SeedPlan], off_loop: bool):
        self.plans = plans
        self.future: Future | None = None
        if off_loop and getattr(store, "path", ":memory:") != ":memory:":
            self.future = _thread().submit(_read_apart, store.path, plans)
        else:
            read(store.samples, plans)

    async def wait(self) -> None:
        """Let the event loop run until the read is back (its error is `finish`'s to raise)."""
        if self.future is not None and not self.future.done():
            await asyncio.wait([asyncio.wrap_future(self.future)])

    def finish(self) -> list[SeedPlan]:
        """The plans with what was read (waiting for the read if it is still under way)."""
        if self.future is not None:
            self.future.result()
        return self.plans


def _read_apart(path: str, plans: list[SeedPlan]) -> None:
    with StoreReader(path) as reader:
        read(reader.samples, plans)


def _thread() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="alertd-seed")
    return _executor


def apply(plans: list[SeedPlan], is_tracked, now: float) -> None:
    """Add the new series' rows and load what was read into them (on the loop: a few
    microseconds a series, the rest was done beside it)."""
    for p in plans:
        rt = p.rt
        fps, ts, values, seen = p.blocks
        first = len(rt.windows.keys)
        for (key, s), fp in zip(p.new.items(), fps):
            rt.add_series(key, s.labels, is_tracked, now, fp)
        rt.windows.seed_rows(first, ts, values, seen)
        rt.seeded_keys = p.keys
