"""Detector calls with a time limit, so one hung detector cannot stop the daemon.

A score call (`start`, then `finish`) runs in a small thread pool while the tick waits for it, up to
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

import asyncio
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


class Call:
    """A detector call under way: `future` in the worker (None: made directly in `finish`,
    or `hung`: refused because an earlier call of the rule is stuck) and its deadline."""

    __slots__ = ("future", "direct", "deadline", "hung")

    def __init__(self, future: Future | None, direct, deadline: float | None, hung: bool = False):
        self.future, self.direct, self.deadline, self.hung = future, direct, deadline, hung

    def remaining(self) -> float:
        """Seconds left until the time limit (0 once it passed)."""
        return max(0.0, self.deadline - time.monotonic())

    async def wait(self) -> None:
        """Let the event loop run until the call is done or its time limit passed (it never
        raises: `Scorer.finish` tells the outcome)."""
        if self.future is None or self.future.done():
            return
        waiting = asyncio.wrap_future(self.future)
        # (its error, if any, is `finish`'s to raise: marked as seen so asyncio does not log it)
        waiting.add_done_callback(lambda f: f.cancelled() or f.exception())
        await asyncio.wait([waiting], timeout=self.remaining())


class Scorer:
    """Runs `detector.score(batch)` per rule with a time limit; see the module docstring."""

    def __init__(self, timeout: float | None):
        self.timeout = timeout
        self.last_seconds = 0.0  # how long the last answered call took (for the metric)
        self._worker: _Worker | None = None
        self._stuck: dict[str, Future] = {}  # rule -> the call that passed its time limit

    def start(self, rule: str, detector, batch) -> Call:
        """Hand `batch` to the worker and return at once (the sliced tick scores the next
        slice while the event loop sends the last one's notices); `finish` gets the scores."""
        if self.timeout is None:
            return Call(None, partial(_timed, detector.score, batch), None)
        stuck = self._stuck.get(rule)
        if stuck is not None:
            if not stuck.done():
                return Call(None, None, None, hung=True)
            del self._stuck[rule]  # it came back: its (stale) result is dropped
        if self._worker is None:
            self._worker = _Worker()
        future = self._worker.submit(partial(_timed, detector.score), batch)
        return Call(future, None, time.monotonic() + self.timeout)

    def finish(self, rule: str, call: Call, meanwhile=None):
        """The scores of a `start`ed call (waiting for them up to the time limit counted from
        the start), or DetectorHung. `meanwhile()`, if given, runs on the calling thread while
        the call is under way, exactly once, whether the detector answers, fails or is abandoned."""
        if call.future is None:
            if meanwhile is not None:
                meanwhile()
            if call.hung:
                raise DetectorHung(f"a score call is still running after more than {self.timeout:g}s "
                                   "(detector_timeout); the rule is skipped until it returns")
            scores, self.last_seconds = call.direct()
            return scores
        future = call.future
        if meanwhile is not None:
            try:
                meanwhile()
            except BaseException:
                # the tick fails; the call may finish, or else counts as abandoned (as below),
                # so no other rule's call queues behind it
                wait([future], timeout=call.remaining())
                if not future.done():
                    self._abandon(rule, future)
                raise
        try:
            scores, self.last_seconds = future.result(timeout=call.remaining())
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
