"""Training beside the hot path: fit trainable detectors on stored history, swap models in.

`Trainer.poll()` (after every tick, and on a timer for time-based schedules) checks each
rule whose detector is trainable and submits a fit when one is due: the first time a series
has `min_history` points (or a ready series is not covered by the model), every `retrain`
seconds of the daemon clock, or once a series has `retrain_points` new points. The fit runs
in a worker thread with its own read connection to the store, so a tick never waits for it;
a detector that sets `fit_in_process` is fitted in the fit worker process instead, which reads
the store itself (alertd/engine/fit_process.py), so neither the reading nor the fit holds the
daemon's GIL (an in-memory store cannot be read from another process: its fits stay in the
thread). When it finishes, the model is installed on the event loop (one reference swap)
and saved in the store with the detector's version, so a restart reuses it. Points inside
the rule's firing incidents are left out of the training data (unless they are most of it:
then the "incident" has become the new normal; alertd/engine/training_data.py). A fit that
raises (a worker process killed mid-fit too) leaves the previous model in use; the error is
logged with when the fit is tried again, and counted.

`inline=True` runs fits synchronously inside `poll()`: backtests use it so a replay is
deterministic (the simulated clock stands still while a model is fitted).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from ..base import stored_form
from ..detect import fit_worker
from ..durations import format_duration
from ..store.fitted_models import StoredModel
from .fit_process import FitJob, FitSummary, fit_in_worker
from .training_data import training_set

WANTED_GAP = 10  # points between two fits asked for by `fit_wanted` (no refit storms)


def params_json(params) -> str:
    """A detector's params as JSON, stored beside its model (secrets never: detectors have none)."""
    try:
        return json.dumps(dataclasses.asdict(params), default=str, sort_keys=True)
    except TypeError:
        return json.dumps(repr(params))


def retry_text(plan) -> str:
    """When a failed fit is tried again, for its log line."""
    if plan is None:
        return "at the next fit"
    if plan.every is not None:
        return f"in {format_duration(plan.every)} (retrain)"
    return f"after {plan.every_points} new points (retrain_points)"


@dataclass
class RuleTraining:
    """The training state of one rule."""

    runtime: object
    fitted_clock: float | None = None  # daemon clock of the last successful fit
    seen_at_fit: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    attempt_seen: int = -1  # max points seen by a series at the last attempt
    attempt_clock: float | None = None  # daemon clock of the last attempt
    retry_later: bool = False  # the last attempt failed or had too little history
    in_flight: Future | None = None
    fits: int = 0
    failures: int = 0
    last_error: str | None = None
    last_reason: str | None = None
    fit_pid: int | None = None  # the process the last successful fit ran in
    detached: bool = False  # dropped by a reload
    catching_up: bool = False  # a partial (catch-up) fit just ended: fit again now

    @property
    def name(self) -> str:
        return self.runtime.rule.name


class Trainer:
    """Schedules fits of trainable detectors in a worker pool and installs the results."""

    def __init__(self, engine, store, clock, log, metrics=None, *, store_path=None,
                 workers: int = 1, inline: bool = False, processes: bool = True):
        self.store, self.clock, self.log, self.metrics = store, clock, log, metrics
        self.store_path = str(store_path) if store_path else getattr(store, "path", ":memory:")
        self.inline = inline or self.store_path == ":memory:"
        self.processes = processes and not self.inline  # `fit_in_process` detectors in the worker
        self.workers = workers
        self.rules = [RuleTraining(rt) for rts in engine.rules_by_source.values() for rt in rts
                      if getattr(rt.detector, "trainable", False)]
        self.executor: ThreadPoolExecutor | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._local = threading.local()

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Reuse stored models of the current versions; start the worker pool."""
        for st in self.rules:
            self._restore(st)
        try:
            self.loop = asyncio.get_running_loop()
        except RuntimeError:
            self.loop = None
        if not self.inline and self.rules:
            self.executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="alertd-fit")
        if any(self._in_process(st) for st in self.rules):
            fit_worker.warm()  # its start beside the daemon's, not beside the first fit's ticks

    def sync(self, engine) -> None:
        """After a reload: kept rules keep their training state; new and changed rules start
        from their stored models (if the params still match); removed rules are dropped, and
        a fit of theirs still running is discarded when it ends."""
        current = {id(st.runtime): st for st in self.rules}
        rules = []
        for rt in engine.runtimes():
            if not getattr(rt.detector, "trainable", False):
                continue
            st = current.pop(id(rt), None)
            if st is None:
                st = RuleTraining(rt)
                self._restore(st)
            rules.append(st)
        for st in current.values():
            st.detached = True
        self.rules = rules
        if not self.inline and self.rules and self.executor is None:
            self.executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="alertd-fit")

    async def stop(self) -> None:
        """Stop the pool; running fits finish in the background and are discarded (one in the
        worker process is stopped with it: the daemon's exit must not wait for a fit)."""
        if any(st.in_flight is not None and self._in_process(st) for st in self.rules):
            fit_worker.shutdown()
        if self.executor is not None:
            self.executor.shutdown(wait=False, cancel_futures=True)
            self.executor = None

    def _restore(self, st: RuleTraining) -> None:
        det = st.runtime.detector
        stored = self.store.models.load(st.name)
        if stored is None:
            return
        if stored.version != det.model_version() or stored.detector != det.type_name:
            self.log.info("model_discarded", rule=st.name, reason="the detector's params changed; refitting")
            return
        try:
            det.install(det.load_model(stored.blob))
        except Exception as exc:
            self.log.warning("model_load_failed", rule=st.name, error=f"{type(exc).__name__}: {exc}")
            return
        st.fitted_clock = self.clock.now()
        st.runtime.note_fit("restored", st.fitted_clock, reason="stored model")
        st.seen_at_fit = st.runtime.windows.seen[:len(st.runtime.windows.keys)].copy()
        # counts as an attempt: without this, the first tick after a start refitted the
        # model it had just restored (a full fit's CPU and memory at every start)
        st.attempt_clock = st.fitted_clock
        st.attempt_seen = int(st.seen_at_fit.max()) if len(st.seen_at_fit) else 0
        self.log.info("model_restored", rule=st.name, fitted_at=stored.fitted_at, series=stored.series,
                      size=stored.size)

    # -- scheduling -----------------------------------------------------------------------------
    def due(self, st: RuleTraining) -> str | None:
        """Why a fit of this rule is due now, or None."""
        rt, det = st.runtime, st.runtime.detector
        if st.in_flight is not None:
            return None
        n = len(rt.windows.keys)
        seen = rt.windows.seen[:n]
        if not n or not (seen >= max(det.min_history, 1)).any():
            return None
        plan = det.training_plan()
        top, now = int(seen.max()), self.clock.now()
        if st.attempt_clock is None:
            return "first fit"
        if st.catching_up:
            return "catch-up"
        if st.retry_later:  # failed or too little history last time: wait for the schedule
            if (plan.every is not None and now - st.attempt_clock >= plan.every) or \
                    (plan.every_points is not None and top - st.attempt_seen >= plan.every_points):
                return "retry"
            return None
        if st.fitted_clock is None or det.fit_wanted:
            gap = max(WANTED_GAP, (plan.every_points or 0) // 4)  # a series that stays uncovered
            if top - st.attempt_seen >= gap:                      # must not cause a fit per tick
                return "first fit" if st.fitted_clock is None else "new series ready"
            return None
        if plan.every is not None and now - st.fitted_clock >= plan.every:
            return "schedule"
        if plan.every_points is not None:
            before = np.zeros(n, dtype=np.int64)
            before[:len(st.seen_at_fit)] = st.seen_at_fit[:n]
            if int((seen - before).max()) >= plan.every_points:
                return "new points"
        return None

    def poll(self) -> int:
        """Submit every due fit; returns how many were started (finished, when inline)."""
        started = 0
        for st in self.rules:
            reason = self.due(st)
            # inline (backtests): a catch-up in slices runs all of its slices here
            while reason is not None:
                self._submit(st, reason)
                started += 1
                reason = self.due(st) if self.inline and st.catching_up else None
        return started

    def _submit(self, st: RuleTraining, reason: str) -> None:
        rt = st.runtime
        n = len(rt.windows.keys)
        keys, labels = list(rt.windows.keys), list(rt.windows.labels)
        seen = rt.windows.seen[:n].copy()
        now = self.clock.now()
        st.attempt_seen, st.attempt_clock, st.last_reason = int(seen.max()), now, reason
        st.catching_up = False
        if self.inline or self.executor is None:
            future: Future = Future()
            try:
                future.set_result(self._job(st, keys, labels, now, use_own=False))
            except Exception as exc:
                future.set_exception(exc)
            st.in_flight = future
            self._finish(st, future, seen)
            return
        future = self.executor.submit(self._job, st, keys, labels, now, True)
        st.in_flight = future
        seen = (seen, keys, rt.windows.epoch)  # rows may be renumbered before it ends
        loop = self.loop
        if loop is not None:
            future.add_done_callback(lambda f: loop.is_closed() or loop.call_soon_threadsafe(self._finish, st, f, seen))
        else:
            future.add_done_callback(lambda f: self._finish(st, f, seen))

    # -- the fit ----------------------------------------------------------------------------------
    def _readers(self, use_own: bool):
        if not use_own:
            return self.store.samples, self.store.incidents
        reader = getattr(self._local, "reader", None)
        if reader is None:
            reader = self._local.reader = self.store.reader()
        return reader.samples, reader.incidents

    def _in_process(self, st: RuleTraining) -> bool:
        return self.processes and bool(getattr(st.runtime.detector, "fit_in_process", False))

    def _job(self, st: RuleTraining, keys, labels, now: float, use_own: bool):
        """Runs in a worker thread: read history, fit, serialise (or have the worker process
        do it all). Returns (model, blob, FitSummary, seconds)."""
        det = st.runtime.detector
        started = time.perf_counter()
        plan = det.training_plan()
        if plan.points == 0 and plan.history_keys is None:  # the live state is the model: nothing to read
            model = det.snapshot()
            summary = FitSummary(int(det.model_info().get("series", 0)), 0, now, os.getpid())
        elif use_own and self._in_process(st):
            model, summary = fit_in_worker(FitJob.of(det, self.store_path, st.name, st.runtime.rule.source, keys,
                                                     labels, now, plan))
        else:
            samples, incidents = self._readers(use_own)
            data = training_set(samples, incidents, st.name, keys, labels, plan.points, now, plan.span,
                                st.runtime.rule.source, plan.history_keys)
            model, summary = det.fit(data), FitSummary(len(data), data.excluded, now, os.getpid())
            del data  # a slice of a catch-up: its points go before the next slice is read
        partial = plan.history_keys is not None
        blob = stored_form(det, model) if model is not None and not partial else b""  # pieces: arrays not copied
        return model, blob, summary, time.perf_counter() - started, plan.history_keys

    def _finish(self, st: RuleTraining, future: Future, seen) -> None:
        """On the loop: install and persist the model, or log and count the failure."""
        st.in_flight = None
        if st.detached:
            return  # the rule changed or went away in a reload
        if isinstance(seen, tuple):  # (seen, keys, windows epoch) of the submit
            seen, keys, epoch = seen
            win = st.runtime.windows
            if epoch != win.epoch:  # series were dropped meanwhile: renumber by key
                again = np.zeros(len(win.keys), dtype=np.int64)
                for key, count in zip(keys, seen):
                    if key in win.rows:
                        again[win.rows[key]] = count
                seen = again
        det = st.runtime.detector
        st.retry_later = False
        try:
            model, blob, summary, seconds, partial = future.result()
        except Exception as exc:  # the previous model stays in use
            st.failures += 1
            st.retry_later = True
            st.last_error = f"{type(exc).__name__}: {exc}"[:300]
            self._count(st.name, "error")
            st.runtime.note_fit("error", self.clock.now(), error=st.last_error)
            self.log.error("model_fit_failed", rule=st.name, error=st.last_error, failures=st.failures,
                           retry=retry_text(det.training_plan()),
                           model="the previous one stays in use" if det.model_info() else "none yet")
            return
        if model is None:
            st.retry_later = True
            self._count(st.name, "skipped")
            st.runtime.note_fit("skipped", self.clock.now())
            self.log.info("model_fit_skipped", rule=st.name, reason="no series has enough usable points yet")
            return
        det.install(model)
        st.fits += 1
        st.fitted_clock, st.seen_at_fit, st.last_error, st.fit_pid = self.clock.now(), seen, None, summary.pid
        self._count(st.name, "ok")
        st.runtime.note_fit("ok", self.clock.now(), reason=st.last_reason)
        if partial is not None:
            self._continue_catch_up(st, partial, summary, seconds)
            return
        self._save(st, blob, summary.series, seconds, float(det.model_info().get("fitted_at", summary.now)))
        self.log.info("model_fitted", rule=st.name, reason=st.last_reason, series=summary.series,
                      excluded_points=summary.excluded, seconds=round(seconds, 3), size=len(blob),
                      process="worker" if summary.pid != os.getpid() else "daemon")

    def _save(self, st: RuleTraining, blob: bytes, series: int, seconds: float, fitted_at: float) -> bool:
        """Persist the rule's model (in use already: a failed save only costs the restart)."""
        det = st.runtime.detector
        try:
            self.store.models.save(StoredModel(
                st.name, det.type_name, det.model_version(), fitted_at, self.clock.now(), series,
                int(det.model_info().get("train_rows", 0)), float(seconds), len(blob), blob,
                params_json(det.params)))
            return True
        except Exception as exc:  # the model is in use; it just will not survive a restart
            self.log.warning("model_save_failed", rule=st.name, error=f"{type(exc).__name__}: {exc}")
            return False

    def save_snapshots(self) -> int:
        """When the daemon stops: save the live state of detectors whose state is their model
        (`Detector.snapshot`), so a restart resumes where this run stopped, not at the last
        scheduled save (up to `retrain` earlier). Returns the models saved."""
        saved = 0
        for st in self.rules:
            det = st.runtime.detector
            if st.detached:
                continue
            started = time.perf_counter()
            try:
                model = det.snapshot()
                if model is None:
                    continue
                blob = stored_form(det, model)
            except Exception as exc:
                self.log.warning("model_save_failed", rule=st.name, error=f"{type(exc).__name__}: {exc}")
                continue
            series = int(det.model_info().get("series", 0))
            if self._save(st, blob, series, time.perf_counter() - started, self.clock.now()):  # (state of now)
                saved += 1
                self.log.info("model_saved", rule=st.name, reason="stop", series=series, size=len(blob),
                              seconds=round(time.perf_counter() - started, 3))
        return saved

    def _continue_catch_up(self, st: RuleTraining, done: frozenset, summary, seconds: float) -> None:
        """A slice of a catch-up is installed (not saved: it is part of a model). The next
        slice, or the full fit that saves the whole model, starts now, not a tick later."""
        following = st.runtime.detector.training_plan().history_keys
        # no progress (the detector names the same series again): wait for the schedule
        st.catching_up = following != done
        st.retry_later = not st.catching_up
        self.log.info("model_catch_up", rule=st.name, series=summary.series, seconds=round(seconds, 3),
                      next="the next slice" if following and st.catching_up else "the full fit")
        if st.catching_up and self.executor is not None:  # (stopped: no fit on the loop)
            self._submit(st, "catch-up")

    def series_dropped(self, dropped: dict) -> None:
        """Rows of some rules' windows were renumbered ({rule: (rows kept, keys dropped)},
        alertd.engine.forget): the points seen at the last fit follow them."""
        for st in self.rules:
            if st.name in dropped:
                kept = dropped[st.name][0]
                st.seen_at_fit = st.seen_at_fit[kept[kept < len(st.seen_at_fit)]]

    def _count(self, rule: str, result: str) -> None:
        counter = getattr(self.metrics, "model_fits", None)
        if counter is not None:
            counter.labels(rule, result).inc()

    def status(self) -> dict[str, dict]:
        """Per rule: fits, failures, last error, whether a fit is running, the model."""
        return {st.name: {"fits": st.fits, "failures": st.failures, "last_error": st.last_error,
                          "fitting": st.in_flight is not None, "fit_pid": st.fit_pid, "model": st.runtime.detector.model_info()}
                for st in self.rules}
