"""A poll's tick in slices (alertd/engine/slices.py): the notice of a series judged in an early
slice leaves before the last slice is scored, whatever the series' place in the poll; every
series is scored once; grouping stays that of one tick; the poll's samples commit with the
second slice, and a failure before they do keeps only what the first slice committed."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys

import numpy as np
import pytest
from configs import NEVER, config_text, rule

from alertd.config.load import load_config
from alertd.daemon.core import Daemon
from alertd.delivery.worker import OutboxWorker
from alertd.engine import slices
from alertd.engine.slices import slice_order
from alertd.engine.tick import Engine
from alertd.engine.windows import SeriesWindows
from alertd.incidents.meta import MetaRule, meta_verdict
from alertd.log import get_logger
from alertd.metrics import Metrics
from alertd.model import Sample, make_labels
from alertd.store import Store

N = 3000  # series in a poll: above HEAD_FROM, so the tick is sliced


def config(group_by=("host",), detector=None):
    r = rule("high", series="cpu", limit=90)
    if detector is not None:
        r["detector"] = detector
    return config_text(
        http=None, sources={"app": {"type": "test_list", "cron": NEVER}}, rules=[r],
        receivers={"rec": [{"type": "test_record"}]},
        routes={"receiver": "rec", "group_by": list(group_by), "group_wait": "0s", "group_interval": "1h"})


def poll(ts, values):
    return [Sample("cpu", make_labels({"host": f"h{i:04d}"}), ts, float(v)) for i, v in enumerate(values)]


def fixture_module(registry, kind, name):
    """The module of a fixture plugin (tests/plugins), as the registry loaded it."""
    return sys.modules[registry.get(kind, name).__module__]


@pytest.fixture
def engine(write_config, registry, clock, tmp_path):
    cfg = load_config(write_config(config()), registry, environ={})
    store = Store(tmp_path / "t.db")
    eng = Engine(cfg, registry, store, clock, Metrics(), get_logger())
    calls: list[list[str]] = []  # the keys of each detector call, in order
    det = eng.rules_by_source["app"][0].detector
    score = det.score
    det.score = lambda batch: (calls.append(list(batch.keys)), score(batch))[1]
    yield eng, store, calls
    store.close()


def incidents_on_disk(path) -> list[str]:
    """The hosts of firing incidents as another connection sees them (committed, not just in
    the tick's transaction)."""
    with sqlite3.connect(path) as db:
        return sorted(json.loads(row[0])["host"] for row in db.execute("SELECT labels FROM incidents WHERE state = 'firing'"))


@pytest.mark.parametrize("jumper", [0, N // 2, N - 1])
def test_an_early_slice_is_committed_and_its_notice_sent_before_the_last_slice_is_scored(
        engine, registry, clock, tmp_path, jumper):
    eng, store, calls = engine
    sent = fixture_module(registry, "notifier", "test_record").SENT
    sent.clear()
    t = clock.now()
    eng.ingest("app", poll(t, [10.0] * N))  # history: every series at 10
    calls.clear()
    clock.advance(5)
    values = [10.0] * N
    values[jumper] = 95.0  # one series jumps, wherever it is in the poll
    consumed = []
    tick = eng.tick("app", poll(t + 5, values), consumed=lambda: consumed.append(store.samples.count()))
    steps = tick.steps()
    pause = next(steps)  # the first slice is committed: its transitions wait to be told
    key = f'cpu{{host="h{jumper:04d}"}}'
    assert [tr.incident.labels["host"] for tr in pause.transitions] == [f"h{jumper:04d}"]
    assert len(calls) == 1 and key in calls[0] and len(calls[0]) < N  # only the head is scored
    assert incidents_on_disk(tmp_path / "t.db") == [f"h{jumper:04d}"]
    # the poll's samples are not in the head's transaction (their insert would hold its
    # notice up): they commit with the next slice, together with the read position
    assert not tick.stored and store.samples.count() == N and consumed == []
    assert eng.router.flush_due() == 1  # the group timer's pass: the notice is queued ...
    worker = OutboxWorker(store, {("rec", 0): registry.get("notifier", "test_record")(
        registry.get("notifier", "test_record").Params(), None)}, clock, Metrics(), get_logger())
    assert asyncio.run(worker.run_once()) == 1  # ... and delivered
    assert [n.incidents[0].labels["host"] for n in sent] == [f"h{jumper:04d}"]
    assert len(calls) == 1  # while the rest of the poll is still unscored
    for _ in steps:
        pass
    assert tick.stored and store.samples.count() == 2 * N and consumed == [2 * N]
    assert sorted(k for keys in calls for k in keys) == sorted(set(k for keys in calls for k in keys))
    assert sum(len(keys) for keys in calls) == N  # every series scored exactly once
    assert tick.result.scored == N and len(tick.result.transitions) == 1


def test_a_poll_up_to_head_from_series_is_one_call(engine, clock):
    eng, _, calls = engine
    t = clock.now()
    samples = poll(t, [10.0] * slices.HEAD_FROM)
    samples[-1] = Sample(samples[-1].name, samples[-1].labels, t, 95.0)
    steps = eng.tick("app", samples).steps()
    assert list(steps) == []  # no pause: one slice, one transaction, as before
    assert [len(keys) for keys in calls] == [slices.HEAD_FROM]


def _windows(n: int, seed: int) -> tuple[SeriesWindows, np.random.Generator]:
    """n series with 12 points of noise around 100 each."""
    win = SeriesWindows(12)
    for i in range(n):
        win.add(f"k{i}", ())
    rng = np.random.default_rng(seed)
    win.values[:n] = rng.normal(100, 5, (n, 12))
    return win, rng


def test_the_order_puts_jumps_and_open_incidents_first_wherever_they_are():
    n = 5000
    win, rng = _windows(n, seed=1)
    values = rng.normal(100, 5, n)
    for jumper in (0, 1234, n - 1):
        v = values.copy()
        v[jumper] = 1000.0
        win.active[:] = False
        win.active[77] = True  # an open incident: its recovery is news too
        parts = slice_order(win, np.arange(n), v)
        assert jumper in parts[0] and 77 in parts[0] and len(parts[0]) <= slices.FIRST_SLICE
        assert sorted(np.concatenate(parts).tolist()) == list(range(n))  # each once
        rest = np.concatenate(parts[1:])
        assert (np.diff(rest) > 0).all()  # the others in poll order
    win.values[:n] = np.nan  # no history yet: nothing to hurry, but nothing lost
    parts = slice_order(win, np.arange(n), values)
    assert sorted(np.concatenate(parts).tolist()) == list(range(n))


def test_new_jumps_go_first_even_when_open_incidents_would_fill_the_first_slice():
    """More open incidents than FIRST_SLICE (a storm): the new jumps still go first, the
    open incidents fill the rest of the first slice, the others follow in poll order."""
    n = 5000
    win, _ = _windows(n, seed=2)
    values = win.values[:n].mean(axis=1)  # nothing else urgent
    values[[10, 2500, n - 1]] = 1000.0
    win.active[:] = False
    win.active[100:100 + 2 * slices.FIRST_SLICE] = True
    parts = slice_order(win, np.arange(n), values)
    head = parts[0].tolist()
    assert len(head) == slices.FIRST_SLICE
    assert sorted(head[:3]) == [10, 2500, n - 1]
    assert all(100 <= k < 100 + 2 * slices.FIRST_SLICE for k in head[3:])
    assert sorted(np.concatenate(parts).tolist()) == list(range(n))  # each once


def test_members_a_later_slice_adds_to_a_notified_group_are_told_at_once(write_config, registry, clock, tmp_path):
    """group_wait 0 and one group for all: the head's member is told after the head; a
    member found by the rest of the poll is told right after, not a group_interval later."""
    cfg = load_config(write_config(config(group_by=(),
                                          detector={"type": "test_warm", "limit": 90, "window": 5,
                                                    "min_history": 1})), registry, environ={})
    store = Store(tmp_path / "t.db")
    eng = Engine(cfg, registry, store, clock, Metrics(), get_logger())
    t = clock.now()
    calm = [10.0] * N
    # series 1 swings widely (its window's deviation is large): above the limit, not urgent
    swing = [0.0, 89.0, 0.0, 89.0, 0.0]
    for k, level in enumerate(swing):
        values = list(calm)
        values[1] = level
        eng.ingest("app", poll(t + 5 * k, values))
    clock.advance(25)
    values = list(calm)
    values[0], values[1] = 500.0, 91.0  # series 0 jumps (urgent); series 1 barely crosses
    steps = eng.tick("app", poll(t + 25, values)).steps()
    pause = next(steps)
    assert [tr.incident.labels["host"] for tr in pause.transitions] == ["h0000"]
    assert eng.router.flush_due() == 1  # the group's first notice: h0000
    for _ in steps:
        pass
    before = store.outbox.pending_count()
    assert eng.router.flush_due() == 1  # at once, no clock advance: h0000 and h0001
    assert store.outbox.pending_count() == before + 1
    store.close()


def test_a_daemon_sends_the_heads_notice_while_the_detector_scores_the_rest(write_config, registry, clock, tmp_path):
    """Real threads: the rest of the poll is scored in the detector's worker thread, and that
    call waits until test_record has delivered a notice. Only a tick that lets the event loop
    deliver between slices lets it end before its 10 s wait."""
    mod = fixture_module(registry, "detector", "test_gate")
    mod.GATE_CALLS.clear()
    mod.SENT_EVENT.clear()
    mod.GATE_ARMED.clear()
    mod.SENT.clear()
    cfg = load_config(write_config(config(detector={"type": "test_gate", "limit": 90, "hold_over": 1000})),
                      registry, environ={})

    async def scenario():
        daemon = Daemon(cfg, registry, store_path=tmp_path / "d.db", clock=clock)
        await daemon.start()
        source = daemon.sources["app"]
        t = clock.now()
        source.pending = poll(t, [10.0] * N)
        await daemon.poll("app")  # history (no pause: nothing urgent, no transition)
        mod.GATE_CALLS.clear()
        mod.SENT_EVENT.clear()
        mod.GATE_ARMED.set()
        clock.advance(5)
        values = [10.0] * N
        values[N - 1] = 95.0
        source.pending = poll(t + 5, values)
        await daemon.poll("app")
        mod.GATE_ARMED.clear()
        calls = list(mod.GATE_CALLS)
        sent = [n.incidents[0].labels["host"] for n in mod.SENT]
        await daemon.drain()
        return calls, sent

    calls, sent = asyncio.run(scenario())
    assert [n for n, _ in calls] == [1, N - 1]  # the head (the jump alone), then the rest
    assert calls[1][1] is True  # the notice was out while the rest was being scored
    assert sent == [f"h{N - 1:04d}"]


def tick_failing_at_commit(eng, n, samples):
    """Run a tick of `samples` whose n-th alert-stage commit fails (a full disk); the tick, after
    its failure, with the commit working again."""
    commit = failing_nth_commit(eng, n)
    tick = eng.tick("app", samples)
    with pytest.raises(sqlite3.OperationalError):
        for _ in tick.steps():
            pass
    eng.alerting.commit = commit
    return tick


def failing_nth_commit(eng, n):
    """Make the alert stage's n-th commit from now fail as a full disk would."""
    commit = eng.alerting.commit
    seen = []

    def failing_commit(*args):
        seen.append(1)
        if len(seen) == n:
            raise sqlite3.OperationalError("disk I/O error")
        return commit(*args)

    eng.alerting.commit = failing_commit
    return commit


def test_a_failure_before_the_samples_commit_keeps_only_the_heads_transitions(engine, clock, tmp_path):
    """The second slice's transaction (the rest of the poll, the poll's samples, the read
    position) fails: the head's transition stays committed (its notice may be out), nothing
    else of the poll is; the windows are the store's again, and the same samples brought
    again are judged as usual, the head's series included, without a second incident."""
    eng, store, calls = engine
    t = clock.now()
    eng.ingest("app", poll(t, [10.0] * N))
    clock.advance(5)
    values = [10.0] * N
    values[5] = 95.0
    tick = tick_failing_at_commit(eng, 2, poll(t + 5, values))
    assert not tick.stored and store.samples.count() == N  # (not consumed: the source brings them again)
    assert incidents_on_disk(tmp_path / "t.db") == ["h0005"]  # the head's transition stays
    win = eng.rules_by_source["app"][0].windows
    assert (win.last_ts[:N] == t).all()  # the windows hold what the store holds
    opened = [(i.fingerprint, i.state, i.started_at) for i in store.incidents.open()]
    calls.clear()
    result = eng.ingest("app", poll(t + 5, values))  # the same poll again
    assert result.scored == N and result.transitions == []  # judged, nothing skipped, nothing new
    assert [(i.fingerprint, i.state, i.started_at) for i in store.incidents.open()] == opened
    assert store.samples.count() == 2 * N


def test_a_tick_stopped_before_its_samples_commit_leaves_the_windows_as_the_store_has_them(engine, clock, tmp_path):
    """The daemon stops (the tick is closed) at the pause after the head: the head's
    transition is committed, the poll's samples are not, and the windows say so."""
    eng, store, _ = engine
    t = clock.now()
    eng.ingest("app", poll(t, [10.0] * N))
    clock.advance(5)
    values = [10.0] * N
    values[N - 7] = 95.0
    tick = eng.tick("app", poll(t + 5, values))
    steps = tick.steps()
    assert next(steps).transitions
    steps.close()
    assert not tick.stored and store.samples.count() == N
    assert incidents_on_disk(tmp_path / "t.db") == [f"h{N - 7:04d}"]
    assert (eng.rules_by_source["app"][0].windows.last_ts[:N] == t).all()
    result = eng.ingest("app", poll(t + 5, values))  # brought again after the restart
    assert result.scored == N and result.transitions == [] and store.samples.count() == 2 * N


def test_a_later_slice_that_fails_keeps_what_the_earlier_ones_committed(engine, clock, tmp_path, monkeypatch):
    """Three slices (the head, then the rest in two): the third one's transaction fails after
    the second committed the poll's samples. The poll is stored, the head's transition stays,
    the windows hold the stored points, and the next poll is judged as usual."""
    eng, store, calls = engine
    monkeypatch.setattr(slices, "SLICE_SERIES", N // 2 + 1)
    t = clock.now()
    eng.ingest("app", poll(t, [10.0] * N))
    clock.advance(5)
    values = [10.0] * N
    values[5] = 95.0
    calls.clear()
    tick = tick_failing_at_commit(eng, 3, poll(t + 5, values))
    assert len(calls) == 3
    assert tick.stored and store.samples.count() == 2 * N  # the poll is stored
    assert incidents_on_disk(tmp_path / "t.db") == ["h0005"]  # the head's transition stays
    win = eng.rules_by_source["app"][0].windows
    assert (win.last_ts[:N] == t + 5).all()  # the windows hold the stored points
    clock.advance(5)
    calls.clear()
    result = eng.ingest("app", poll(t + 10, values))
    assert result.scored == N  # the next poll is judged as usual, nothing skipped as repeated


def test_a_whole_poll_detector_gets_the_poll_in_one_call(engine, clock):
    eng, _, calls = engine
    eng.rules_by_source["app"][0].detector.whole_poll = True
    t = clock.now()
    eng.ingest("app", poll(t, [10.0] * N))
    values = [10.0] * N
    values[N - 1] = 95.0
    clock.advance(5)
    calls.clear()
    assert list(eng.tick("app", poll(t + 5, values)).steps()) == []
    assert [len(keys) for keys in calls] == [N]


def test_slices_change_no_verdict_no_transition_and_no_for(write_config, registry, clock, tmp_path, monkeypatch):
    """The same polls through a sliced tick and through one call per poll (HEAD_FROM above
    the poll): the same incidents, states and transitions, `for` included."""
    text = config(group_by=("host",), detector={"type": "zscore", "window": 12, "min_history": 5})
    text = text.replace("name: high,", "name: high, for: 10s, clear_for: 10s,")
    assert "for: 10s" in text
    cfg = load_config(write_config(text), registry, environ={})
    rng = np.random.default_rng(7)
    level = rng.uniform(50, 150, N)
    polls = []
    for k in range(16):
        values = level + rng.normal(0, 1, N)
        if k >= 8:
            values[[3, N // 2, N - 2]] *= 10  # three jumps that stay (fire after `for`)
        if k >= 12:
            values[N // 2] = level[N // 2]  # one recovers (resolves after `clear_for`)
        values[rng.integers(0, N, 5)] += 8  # and some noise the screen may find urgent
        polls.append(values)

    def run(head_from, name):
        monkeypatch.setattr(slices, "HEAD_FROM", head_from)
        store = Store(tmp_path / f"{name}.db")
        eng = Engine(cfg, registry, store, clock.__class__(1_750_000_000.0), Metrics(), get_logger())
        t = eng.clock.now()
        seen, pauses = [], 0
        for k, values in enumerate(polls):
            tick = eng.tick("app", poll(t + 5 * k, values))
            pauses += len(list(tick.steps()))
            seen.append(sorted((tr.kind, tr.incident.labels["host"]) for tr in tick.result.transitions))
            eng.clock.advance(5)
        state = sorted((i.fingerprint, i.state, i.count) for i in store.incidents.open())
        store.close()
        return seen, state, pauses

    sliced, whole = run(slices.HEAD_FROM, "sliced"), run(10 ** 9, "whole")
    assert sliced[2] > 0 and whole[2] == 0  # the first did pause between slices, the second never
    assert sliced[:2] == whole[:2]
    fired = [tr for poll_transitions in sliced[0] for tr in poll_transitions]
    assert ("firing", "h0003") in fired and ("resolved", f"h{N // 2:04d}") in fired


def test_a_commit_between_slices_from_outside_the_tick_is_routed_without_the_polls_context(engine, clock):
    """A failed poll of another source, or posted alerts, may commit while a tick is paused
    between slices: only the tick's own slices carry its poll (the groups they notified)."""
    eng, _, _ = engine
    routed = []
    route = eng.router.route
    eng.router.route = lambda transitions, now, poll=None: (routed.append(poll), route(transitions, now, poll))[1]
    t = clock.now()
    eng.ingest("app", poll(t, [10.0] * N))
    clock.advance(5)
    values = [10.0] * N
    values[7] = 95.0
    steps = eng.tick("app", poll(t + 5, values)).steps()
    next(steps)
    assert routed and routed[-1] is not None  # the head's slice: the poll's context
    outside = MetaRule("alertd_test_outside")  # a change committed from outside the tick
    eng.alerting.observe(outside, meta_verdict(outside, {}, True, clock.now(), "outside"), "fp-outside")
    eng.alerting.commit()
    assert routed[-1] is None
    for _ in steps:
        pass


def test_no_garbage_collection_runs_before_the_first_slices_notices_are_out(write_config, registry, clock, tmp_path):
    """The daemon holds automatic collections off from the tick's start until the first
    slice's notices had their chance to leave (alertd.daemon.gc_tuning.FirstSliceGC), and
    gives them back for the rest of the poll, after a tick that fails too."""
    import gc

    cfg = load_config(write_config(config()), registry, environ={})

    async def scenario():
        daemon = Daemon(cfg, registry, store_path=tmp_path / "d.db", clock=clock)
        await daemon.start()
        daemon.scheduler.pause()
        det = daemon.engine.rules_by_source["app"][0].detector
        score, seen = det.score, []
        det.score = lambda batch: (seen.append((len(batch), gc.isenabled())), score(batch))[1]
        source = daemon.sources["app"]
        t = clock.now()
        source.pending = poll(t, [10.0] * N)
        await daemon.poll("app")
        history = list(seen)
        seen.clear()
        clock.advance(5)
        values = [10.0] * N
        values[N // 3] = 95.0
        source.pending = poll(t + 5, values)
        await daemon.poll("app")
        sliced, after = list(seen), gc.isenabled()
        seen.clear()
        det.score = lambda batch: 1 / 0  # a detector that fails: the tick goes on, the collector is back
        clock.advance(5)
        source.pending = poll(t + 10, values)
        await daemon.poll("app")
        failed = gc.isenabled()
        await daemon.drain()
        return history, sliced, after, failed

    assert gc.isenabled()
    history, sliced, after, failed = asyncio.run(scenario())
    assert history == [(N, False)]  # nothing urgent: the poll in one call, before any pause
    assert sliced == [(1, False), (N - 1, True)]  # the jump alone with the collector held, then the rest
    assert after and failed and gc.isenabled()
