"""Detector calls with a time limit, so one hung detector cannot stop the daemon.

A score call runs in a small thread pool while the tick waits for it, up to
`detector_timeout`. A call that does not answer by then is abandoned: the tick goes on
without that rule, and the rule is skipped on later ticks until the call returns (a thread
cannot be killed; a second call would only pile up behind it). Either way the caller gets
`DetectorHung`, which the engine treats as any failing detector: logged, counted and, while it
lasts, an `alertd_detector_failing` meta-incident. When the stuck call returns, its result
is dropped and the rule scores again on the next tick.

With `timeout=None` the call is made directly (replays and backtests, where the caller waits
anyway and a thread hop per row would only cost time).

`meanwhile` lets the tick do its own work while the detector scores: the engine stores the
poll's samples there. Both spend most of their time outside the GIL (SQLite's steps, the
model's numeric kernels), so on two cores the insert costs the tick little wall time.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future, wait
from concurrent.futures import TimeoutError as FutureTimeout
from functools import partial


class DetectorHung(Exception):
    """A detector's score call did not return within the time limit (or still has not)."""


def _timed(call, arg):
    """(call(arg), the seconds it took)."""
    started = time.perf_counter()
    result = call(arg)
    return result, time.perf_counter() - started


class _Worker:
    """One daemon thread running score calls in turn (a daemon thread, so a call that never
    returns cannot hold up the process's exit, as a ThreadPoolExecutor's would)."""

    def __init__(self):
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._run, name="alertd-score", daemon=True).start()

    def _run(self) -> None:
        while (job := self.jobs.get()) is not None:
            call, arg, future = job
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(call(arg))
                except BaseException as exc:  # handed to the waiting tick
                    future.set_exception(exc)

    def submit(self, call, arg) -> Future:
        future: Future = Future()
        self.jobs.put((call, arg, future))
        return future

    def stop(self) -> None:
        """End the thread once its current call (if any) returns."""
        self.jobs.put(None)


class Scorer:
    """Runs `detector.score(batch)` per rule with a time limit; see the module docstring."""

    def __init__(self, timeout: float | None):
        self.timeout = timeout
        self.last_seconds = 0.0  # how long the last answered call took (for the metric)
        self._worker: _Worker | None = None
        self._stuck: dict[str, Future] = {}  # rule -> the call that passed its time limit

    def score(self, rule: str, detector, batch, meanwhile=None):
        """The detector's scores, or DetectorHung (now or while an earlier call is stuck).

        `meanwhile()`, if given, runs on the calling thread while the call is under way; it
        runs exactly once, whether the detector answers, fails or is abandoned.
        """
        if self.timeout is None:
            if meanwhile is not None:
                meanwhile()
            scores, self.last_seconds = _timed(detector.score, batch)
            return scores
        stuck = self._stuck.get(rule)
        if stuck is not None:
            if not stuck.done():
                if meanwhile is not None:
                    meanwhile()
                raise DetectorHung(f"a score call is still running after more than {self.timeout:g}s "
                                   "(detector_timeout); the rule is skipped until it returns")
            del self._stuck[rule]  # it came back: its (stale) result is dropped
        if self._worker is None:
            self._worker = _Worker()
        future = self._worker.submit(partial(_timed, detector.score), batch)
        if meanwhile is not None:
            try:
                meanwhile()
            except BaseException:
                # the tick fails; the call may finish, or else counts as abandoned (as below),
                # so no other rule's call queues behind it
                wait([future], timeout=self.timeout)
                if not future.done():
                    self._abandon(rule, future)
                raise
        try:
            scores, self.last_seconds = future.result(timeout=self.timeout)
            return scores
        except FutureTimeout:
            self._abandon(rule, future)
            raise DetectorHung(f"no answer within {self.timeout:g}s (detector_timeout); the call "
                               "is abandoned and the rule is skipped until it returns") from None

    def _abandon(self, rule: str, future: Future) -> None:
        self._stuck[rule] = future
        self._worker.stop()  # it is busy with the stuck call: the next call gets a new one
        self._worker = None

    def stuck(self) -> list[str]:
        """Rules whose abandoned call has not returned yet."""
        return [rule for rule, future in self._stuck.items() if not future.done()]

    def close(self) -> None:
        """Stop the worker thread (it ends after its current call)."""
        if self._worker is not None:
            self._worker.stop()
            self._worker = None
