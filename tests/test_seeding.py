"""A poll's new series get their windows from the store off the event loop (alertd/engine/seeding.py):
the daemon's tick pauses while a thread of its own reads them, and the windows, the verdicts
and what is stored are those of the read on the loop."""

from __future__ import annotations

import asyncio
import shutil
import threading

import numpy as np
from configs import NEVER, config_text, rule

from alertd.clock import FakeClock
from alertd.config.load import load_config
from alertd.engine import seeding
from alertd.engine.slices import Pause
from alertd.engine.tick import Engine
from alertd.engine.windows import SeriesWindows
from alertd.log import get_logger
from alertd.metrics import Metrics
from alertd.model import Sample, make_labels
from alertd.store import Store

N = 50
T0 = 1_750_000_000.0


def config(write_config, registry):
    # two rules on the same series with windows of 5 and 12 points: one read serves both
    short = rule("short", series="cpu", limit=90)
    short["detector"] = {"type": "test_warm", "limit": 90, "window": 5, "min_history": 5}
    long = rule("long", series="cpu", limit=90)
    long["detector"] = {"type": "test_warm", "limit": 90, "window": 12, "min_history": 12}
    text = config_text(http=None, sources={"app": {"type": "test_list", "cron": NEVER}}, rules=[short, long],
                       receivers={"rec": [{"type": "test_record"}]},
                       routes={"receiver": "rec", "group_wait": "0s", "group_interval": "1h"})
    return load_config(write_config(text), registry, environ={})


def poll(ts, k):
    return [Sample("cpu", make_labels({"host": f"h{i:03d}"}), ts, float(10 + (i * 7 + k) % 13)) for i in range(N)]


def test_a_restarts_first_poll_reads_the_history_of_its_series_in_a_thread_and_seeds_the_same_windows(
        write_config, registry, tmp_path, monkeypatch):
    cfg = config(write_config, registry)
    first = Store(tmp_path / "a.db")
    clock = FakeClock(T0)
    eng = Engine(cfg, registry, first, clock, Metrics(), get_logger())
    for k in range(20):  # history: 20 points of every series
        clock.set(T0 + 60 * k)
        eng.ingest("app", poll(T0 + 60 * k, k))
    first.close()
    shutil.copy(tmp_path / "a.db", tmp_path / "b.db")
    readers = []
    real = seeding.read
    monkeypatch.setattr(seeding, "read", lambda samples, plans: (readers.append(threading.current_thread().name),
                                                                  real(samples, plans))[1])

    def restart(path, off_loop: bool):
        """A new engine on the store (a restart), its first poll: (engine, pauses seen, verdicts)."""
        clock = FakeClock(T0 + 60 * 20)
        store = Store(path)
        eng = Engine(cfg, registry, store, clock, Metrics(), get_logger())
        verdicts = {}
        eng.observers.append(lambda rt, b, s: verdicts.setdefault(rt.rule.name, []).append(
            (list(b.keys), np.asarray(s.status).tolist(), b.history.tolist())))
        tick = eng.tick("app", poll(T0 + 60 * 20, 20), off_loop=off_loop)

        async def run():
            pauses = []
            steps = tick.steps()
            for pause in steps:
                assert isinstance(pause, Pause)
                if isinstance(pause.call, seeding.SeedRead):
                    # the loop runs meanwhile; the rows are added only once the read is back
                    assert all(not rt.windows.keys for rt in eng.runtimes())
                    await pause.call.wait()
                pauses.append(pause)
            return pauses
        pauses = asyncio.run(run())
        assert tick.stored and tick.result.scored == 2 * N
        return eng, store, pauses, verdicts

    apart, store_a, pauses, verdicts_apart = restart(tmp_path / "a.db", off_loop=True)
    assert len(pauses) == 1 and readers == ["alertd-seed_0"]  # one read for both rules, in the seeding thread
    readers.clear()
    here, store_b, pauses, verdicts_here = restart(tmp_path / "b.db", off_loop=False)
    assert pauses == [] and readers == [threading.current_thread().name]  # Engine.ingest's way: at once

    assert verdicts_apart == verdicts_here
    for a, b in zip(apart.runtimes(), here.runtimes()):
        wa, wb = a.windows, b.windows
        assert wa.keys == wb.keys and len(wa.keys) == N
        n = len(wa.keys)
        for name in ("values", "times", "seen", "last_ts"):
            assert np.array_equal(getattr(wa, name)[:n], getattr(wb, name)[:n], equal_nan=True), name
    # and as the row-by-row `SeriesWindows.seed` of each series' own `recent` read did before
    t = T0 + 60 * 20
    for rt in apart.runtimes():
        ref = SeriesWindows(rt.windows.window)
        need = max(rt.windows.window, rt.detector.min_history)
        stored = store_a.samples.recent(list(rt.windows.keys), need, before=t, source="app")
        for key, labels in zip(rt.windows.keys, rt.windows.labels):
            ref.seed(ref.add(key, labels), *stored[key])
        current = {s.key: s.value for s in poll(t, 20)}
        ref.push(np.arange(N), np.full(N, t), np.array([current[k] for k in ref.keys]))
        for name in ("values", "times", "seen", "last_ts"):
            assert np.array_equal(getattr(ref, name)[:N], getattr(rt.windows, name)[:N], equal_nan=True), name
    short, long = apart.runtimes()
    assert (short.windows.seen[:N] == 5 + 1).all() and (long.windows.seen[:N] == 12 + 1).all()  # each its own
    assert np.array_equal(short.windows.values[:N, -2], long.windows.values[:N, -2])  # the same latest points
    assert store_a.samples.count() == store_b.samples.count() == 21 * N
    store_a.close()
    store_b.close()


def test_an_in_memory_store_is_read_at_once(write_config, registry):
    cfg = config(write_config, registry)
    eng = Engine(cfg, registry, Store(), FakeClock(T0), Metrics(), get_logger())
    eng.ingest("app", poll(T0, 0))
    tick = eng.tick("app", poll(T0 + 60, 1), off_loop=True)  # (nothing new: no read at all)
    assert list(tick.steps()) == [] and tick.result.scored == 2 * N
    fresh = Engine(cfg, registry, eng.store, FakeClock(T0 + 120), Metrics(), get_logger())
    tick = fresh.tick("app", poll(T0 + 120, 2), off_loop=True)  # another process could not read it
    assert list(tick.steps()) == [] and (fresh.runtimes()[0].windows.seen[:N] == 3).all()
