"""The tick of one poll, in slices: a notice leaves as soon as its series is judged.

A poll of many series is scored and routed a slice at a time. Each slice is one detector
call and one store transaction (its alert changes, committed). Between slices the tick
hands the event loop back (`PollTick.steps` yields a `Pause`): after a slice that committed
transitions, so that the group timer flushes them and the delivery worker sends them before
the detector takes the CPU again (the daemon waits up to 25 ms for that), and while the
detector scores a later slice in its worker thread. So the series that jumped is notified
after its slice, not after the last series of the poll. A poll of at most `HEAD_FROM`
series is one slice, as before.

Which series go first: the ones whose new point is far from their recent history (at least
`URGENT` standard deviations of the series' window: cheap, a screen, not a verdict), most
urgent first, then the ones with an open incident, pending or firing (their `for` may end,
or they may recover), at most `FIRST_SLICE` in all, in a call of their own; the others follow in poll
order, in slices of `SLICE_SERIES`. A detector call has a fixed cost (about 5 ms for the
KNN model, whatever its size), so slices are few: at 10,000 series, the urgent ones and then
the rest in one. Every series is judged once per point, with the same history, so verdicts
do not change; a detector that compares the series of one call with each other sets
`whole_poll = True` and gets the poll in one call. A group notified by an earlier slice
that a later slice of the same poll adds members to is flushed again at once
(`Router.route`'s `poll`), so no member waits a `group_interval` because of the slicing.

Durability: every slice's transitions are committed before the slice ends, hence before
any notice of them leaves. The poll's samples and the source's read position (`consumed`)
commit together, in the first transaction of a poll in one slice, and in the second one of
a poll in several: inserting 10,000 samples takes longer than scoring the urgent slice, so
the first slice's notice does not wait for it (bench/latency.py --trace); the insert runs
beside the second slice's detector call instead. A failure before the samples are committed
undoes the tick but for what the first slice committed (its transitions and their notices
stand): the windows go back to what the store has, the source is not consumed and brings the
samples again, and a series of the first slice then gets the same verdict from the same
history, which changes nothing of its open incident. A crash between the two is the same. A
failure after the samples are committed keeps what earlier slices committed and the windows
as the store has them (the points, without that slice's verdicts); the rest of the poll goes
into the windows unscored, and the error is raised at the end.
"""

from __future__ import annotations

import math
import time
from contextlib import ExitStack

import numpy as np

from ..model import Status, Verdict
from . import missing_data as nodata
from . import seeding
from .layers import Skips, layers
from .reuse import Once
from .reuse import poll_keys as _keys
from .rule_runtime import SourceHealth, TickResult

HEAD_FROM = 1000  # a poll of more series than this is sliced
FIRST_SLICE = 250  # at most this many urgent series go first, in a call of their own
SLICE_SERIES = 10_000  # the others: series per detector call (bench/latency.py, bench/scale.py)
URGENT = 6.0  # standard deviations from a series' window that make it urgent


class Pause:
    """Between two slices, no transaction open: either `transitions` were just committed
    (the caller lets their notices leave before the next slice is scored), or the tick waits
    for `call`, the next slice's detector call in the worker thread (or, before the first
    slice, the read of the poll's new series from the store: alertd/engine/seeding.py;
    `before_slices` says so)."""

    __slots__ = ("call", "transitions", "before_slices")

    def __init__(self, call, transitions, before_slices: bool = False):
        self.call, self.transitions, self.before_slices = call, transitions, before_slices


def slice_order(win, rows: np.ndarray, values: np.ndarray) -> list[np.ndarray]:
    """Positions into `rows`, one array per slice: up to FIRST_SLICE urgent series, most
    urgent first (see the module docstring), then the others in poll order, SLICE_SERIES a
    slice; a poll of at most HEAD_FROM series is one slice."""
    size, first = SLICE_SERIES, FIRST_SLICE
    n = len(rows)
    if n <= HEAD_FROM:
        return [np.arange(n)]
    hist = win.values[win._all(rows)]
    with np.errstate(invalid="ignore", divide="ignore"):  # (a median would cost 10 ms a poll)
        mean = hist.mean(axis=1)
        urgency = np.abs(values - mean) / (hist.std(axis=1) + 1e-9 * np.abs(mean))
    urgency[np.isnan(urgency)] = 0.0  # not enough history: no verdict to hurry
    # an open incident goes first too (its recovery, or the end of its `for`, is news), but
    # after the new jumps: with more open incidents than FIRST_SLICE (a storm, or a rule
    # that keeps many open) a new jump must not wait for the rest of the poll behind them
    active = win.active[rows]
    jumps = np.flatnonzero((urgency >= URGENT) & ~active)
    if len(jumps) > first:
        jumps = jumps[np.argpartition(-urgency[jumps], first - 1)[:first]]
    jumps = jumps[np.argsort(-urgency[jumps], kind="stable")]
    urgent = np.concatenate([jumps, np.flatnonzero(active)[:first - len(jumps)]])
    rest = np.ones(n, dtype=bool)
    rest[urgent] = False
    rest = np.flatnonzero(rest)
    parts = [urgent] if len(urgent) else []
    return parts + np.array_split(rest, -(-len(rest) // size)) if len(rest) else parts


class _RuleTick:
    """What the tick gathers about one rule across its slices."""

    def __init__(self, rt):
        self.rt = rt
        self.present: list[np.ndarray] = []
        self.newest = -math.inf
        self.skips = Skips()  # reported once for the tick, whatever the number of batches
        self.failed = False  # the detector failed in this poll: its other slices go unscored
        self.seconds = 0.0
        self.rows: list[np.ndarray] = []
        self.statuses: list[np.ndarray] = []


class PollTick:
    """One poll's tick: `steps()` runs it, yielding a `Pause` between slices (drive it with
    `Engine.ingest` to run it at once); `result` is the TickResult, `stored` whether the
    poll's samples (and read position) are committed."""

    def __init__(self, engine, source: str, samples, alerts: bool = True, consumed=None, off_loop: bool = False):
        self.engine, self.source, self.samples, self.alerts = engine, source, samples, alerts
        self.off_loop = off_loop
        self.consumed = consumed or (lambda: None)
        self.result = TickResult()
        self.stored = False
        self.error: BaseException | None = None  # a later slice failed: the rest goes unscored
        self._txn: ExitStack | None = None
        self._undoing = False  # the windows record their pushes (until the samples are committed)
        self._rts: list = []
        self._poll: tuple[float, set] | None = None  # (start, groups notified by earlier slices)

    # -- transactions (never open across a pause) ------------------------------------------
    def _begin(self) -> None:
        self._txn = ExitStack()
        self._txn.enter_context(self.engine.store.atomic())
        if not self.stored and not self._undoing:  # once stored the windows keep its points: no undo
            for rt in self._rts:
                rt.windows.begin()
            self._undoing = True
        if self.alerts:
            self.engine.alerting.sync()

    def _commit(self, store: bool = True) -> list:
        """Commit the open transaction; with `store`, the first such one also stores the poll
        and consumes it (without, the poll is stored by a later one: see the module docstring)."""
        e, txn = self.engine, self._txn
        try:
            store = store or self._store.done  # (inserted beside this transaction's call)
            if store and not self.stored:
                self._store()
                self.consumed()
            transitions = e.alerting.commit(self._poll) if self.alerts else []
            self._txn = None
            txn.close()
        except BaseException as exc:
            self._abort(exc)
            raise
        self.result.transitions += transitions
        if store and not self.stored:
            self._forget_undo()
            self.stored = True
        return transitions

    def _forget_undo(self) -> None:
        for rt in self._rts:
            rt.windows.end()
        self._undoing = False

    def _undo(self) -> None:
        """The windows back to what the store has (the poll's samples are not in it)."""
        for rt in self._rts:
            rt.windows.rollback()
        self._undoing = False

    def _abort(self, exc: BaseException) -> None:
        """Roll the open transaction back: windows and the alert stage as the store has them
        (once the poll's samples are stored, the windows keep its points: only the verdicts
        of the failed slice are lost)."""
        txn, self._txn = self._txn, None
        if txn is not None:
            txn.__exit__(type(exc), exc, exc.__traceback__)
        self.engine.alerting.reset()
        if self.stored:
            self._forget_undo()
        else:
            self._undo()

    # -- the tick ----------------------------------------------------------------------------
    def steps(self):
        """Run the tick; yields a `Pause` between slices (no transaction is open then)."""
        e, source = self.engine, self.source
        started = time.perf_counter()
        good, skipped = e._clean(source, self.samples)
        result = self.result
        result.skipped = skipped
        keys = _keys(good, e._last_keys[source])
        per_rule = [(rt, *rt.select(good, keys)) for rt in e.rules_by_source.get(source, [])]
        plans = [p for p in (seeding.plan(rt, matched, mkeys) for rt, matched, mkeys in per_rule) if p is not None]
        if plans:  # new series: their windows from the store, read while the loop runs
            now = e.clock.now()
            reading = seeding.SeedRead(e.store, plans, self.off_loop)
            if reading.future is not None:
                yield Pause(reading, [], before_slices=True)
            seeding.apply(reading.finish(), e.tracker.is_tracked, now)
        self._rts = [rt for rt, _, _ in per_rule]
        self._store = Once(lambda: e.store.samples.append(good, source, keys, e.clock.now()))
        self._begin()
        self._poll = (e.clock.now(), set())  # a group an earlier slice notified: see Router.route
        try:
            if not self.alerts:
                self._store()  # a back-fill only fills windows: store first, as they follow
            for rt, matched, mkeys in per_rule:
                if matched:
                    yield from self._rule(rt, matched, mkeys)
                elif self.alerts and good and self.error is None:
                    nodata.apply_no_data(rt, e.alerting, f"the poll has no series matching {rt.rule.series}",
                                         e.clock.now())
            result.stored = len(good)
            if self._txn is not None:
                self._commit()
        except BaseException as exc:
            if self._txn is not None:
                self._abort(exc)
            raise
        e.metrics.source_samples.labels(source).inc(len(good))
        if self.alerts and good and self.error is None:
            health = e.source_health.setdefault(source, SourceHealth())
            health.last_ok, health.consecutive_errors = e.clock.now(), 0
        e.metrics.tick_seconds.labels(source).observe(time.perf_counter() - started)
        e.metrics.last_tick.set(e.clock.now())
        if self.error is not None:
            raise self.error

    def _rule(self, rt, samples, keys):
        e, win = self.engine, rt.windows
        now = e.clock.now()
        rule = _RuleTick(rt)
        for rows, ts, values, scored in layers(rt, samples, keys, rule.skips):
            rule.present.append(rows)
            win.touch(rows, now)
            rule.newest = max(rule.newest, float(ts.max()))
            last = win.last_ts[rows]
            fresh = ts > last  # repeated or out-of-order points are skipped
            if not fresh.all():
                first = win.keys[int(rows[int(np.flatnonzero(~fresh)[0])])]
                repeated = int((ts == last).sum())
                rule.skips.add("repeated_timestamp", repeated, first)
                rule.skips.add("out_of_order", int((~fresh).sum()) - repeated, first)
                rows, ts, values = rows[fresh], ts[fresh], values[fresh]
                if not len(rows):
                    continue
            if not self.alerts or not scored or self.error is not None:
                win.push(rows, ts, values)
                continue
            whole = getattr(rt.detector, "whole_poll", False)
            parts = [np.arange(len(rows))] if whole else slice_order(win, rows, values)
            yield from self._layer(rule, [(rows[p], ts[p], values[p]) for p in parts])
        rule.skips.report(e.metrics, e.log, rt.rule.source, rt.rule.name, self.alerts)
        if not self.alerts or not rule.present or self.error is not None:
            return
        rt.last_data_ts, rt.last_data_at = max(rule.newest, rt.last_data_ts or -math.inf), e.clock.now()
        nodata.data_is_back(rt, e.alerting, rule.newest)
        present = np.concatenate(rule.present)
        rt.note_present(present)
        nodata.resolve_missing(rt, e.alerting, present, rule.newest)

    def _layer(self, rule: _RuleTick, parts: list[tuple]):
        """Score one layer's slices: the first in the open transaction, each later one while
        the event loop runs (`Pause` with its call), then in a transaction of its own; after
        a slice that committed transitions, a `Pause` lets their notices leave first."""
        rt, e = rule.rt, self.engine
        win = rt.windows
        for i, (rows, ts, values) in enumerate(parts):
            if self.error is not None:  # a slice failed: the rest of the poll goes unscored
                win.push(rows, ts, values)
                continue
            batch, call = self._start(rule, (rows, ts, values))
            if self._txn is None:
                if call is not None:
                    yield from self._pause(Pause(call, []), win, parts[i:])
                self._begin()
            # the first of several slices commits without the poll's samples (the next one has them)
            store = i > 0 or len(parts) == 1
            scores = self._finish(rule, call, store)
            if scores is None:
                win.push(rows, ts, values)
            else:
                self._judge(rule, rows, ts, values, batch, scores)
            if i + 1 == len(parts):
                break  # the transaction stays open for the rule's last steps
            try:
                transitions = self._commit(store)
            except BaseException as exc:
                if not self.stored:
                    raise  # the poll's samples are not committed: the tick fails
                self._lost(exc, rule)
                continue
            if transitions:
                yield from self._pause(Pause(None, transitions), win, parts[i + 1:])
        if rule.rows:
            status = np.concatenate(rule.statuses)
            e._report_warmup(rt, np.concatenate(rule.rows), status)
            e.metrics.detector_seconds.labels(rt.rule.name).observe(rule.seconds)
            rule.rows, rule.statuses, rule.seconds = [], [], 0.0

    def _pause(self, pause: Pause, win, rest: list[tuple]):
        """Yield `pause` (no transaction is open); if the caller stops there (the daemon is
        stopping), the points of `rest` go into the windows unscored, as the store has them
        (or, before the poll's samples are committed, the windows go back to the store's)."""
        try:
            yield pause
        except GeneratorExit:
            self.error = RuntimeError("the tick was stopped between slices")
            if not self.stored:
                self._undo()
                raise
            for rows, ts, values in rest:
                win.push(rows, ts, values)
            raise

    def _lost(self, exc: BaseException, rule: _RuleTick) -> None:
        """A later slice's transaction failed (rolled back; its points stay in the windows, as
        the store has them): the rest of the poll goes into the windows unscored."""
        self.error = exc
        self.engine.log.error("tick_slice_failed", source=self.source, rule=rule.rt.rule.name,
                              error=f"{type(exc).__name__}: {exc}"[:300],
                              note="earlier slices are committed; the rest of the poll is stored unscored")

    def _start(self, rule: _RuleTick, part):
        """(batch, call) for a slice, its detector call under way (None: not scored)."""
        if rule.failed or self.error is not None:
            return None, None
        rows, ts, values = part
        batch = rule.rt.windows.batch(rows, ts, values)
        return batch, self.engine.scorer.start(rule.rt.rule.name, rule.rt.detector, batch)

    def _finish(self, rule: _RuleTick, pending, store: bool = True):
        """The slice's scores, or None when its detector failed (logged, counted once); with
        `store`, the poll's samples are inserted meanwhile (if they are not yet)."""
        if pending is None:
            return None
        e, rt = self.engine, rule.rt
        try:
            scores = e.scorer.finish(rt.rule.name, pending, self._store if store else None)
        except Exception as exc:  # a detector bug must not stop the tick
            if exc is self._store.error:
                raise  # the store failed beside the call, not the detector: the tick fails
            rule.failed = True
            e.metrics.detector_errors.labels(rt.rule.name).inc()
            error = f"{type(exc).__name__}: {exc}"[:300]
            e.log.error("detector_failed", rule=rt.rule.name, error=error)
            e.detector_errors[rt.rule.name] = error
            rt.note_scored(e.clock.now(), error)
            return None
        e.detector_errors.pop(rt.rule.name, None)
        rt.note_scored(e.clock.now())
        rule.seconds += e.scorer.last_seconds
        return scores

    def _judge(self, rule: _RuleTick, rows, ts, values, batch, scores) -> None:
        """A slice's verdicts into detections, windows and the alert stage."""
        e, rt = self.engine, rule.rt
        win = rt.windows
        for observe in e.observers:
            observe(rt, batch, scores)
        status = np.asarray(scores.status)
        anomalous = status == Status.ANOMALOUS
        if anomalous.any():
            e.detections.add(rt.rule.name, [win.keys[r] for r in rows[anomalous]], ts[anomalous], values[anomalous])
        win.push(rows, ts, values, status)
        self.result.scored += len(rows)
        rule.rows.append(rows)
        rule.statuses.append(status)
        metric = rt.rule.series.name or ""
        judged = np.flatnonzero(anomalous | win.active[rows])
        # a normal point's verdict needs no text: the state machine only keeps an anomalous
        # point's reason (thousands of open incidents at 100,000 series)
        for i, row, bad in zip(judged.tolist(), rows[judged].tolist(), anomalous[judged].tolist()):
            verdict = Verdict.from_scores(rt.rule.name, batch, scores, i, metric or batch.keys[i].split("{")[0],
                                          explain=bad)
            win.active[row] = e.alerting.observe(rt.rule, verdict, rt.fingerprints[row])
            e.detections.band(rt.rule.name, verdict.key, verdict.ts, verdict.lower, verdict.upper)

