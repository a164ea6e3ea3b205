"""The fit worker: one `nice`d process, spawned on first use and kept, where heavy fits run.

A fit in a thread of the daemon holds the GIL for most of its time (numpy's small steps,
SQLite's rows turned into arrays, a compiled library's loop), and the event loop waits for
it at every switch: ticks and pages slow down while it runs. In a process of its own it
competes for a core, not for the GIL, and at `nice 5` (set by the daemon the moment it is
spawned, so that even its start yields) the daemon's own process comes first.

Two users share the one process: the trainer, which runs the whole fit of a detector that
sets `fit_in_process` there (reading its training data from the store itself:
alertd/engine/fit_process.py), and the statsforecast models (alertd/detect/forecast_library.py),
which send it their series in chunks. Fits are background work and the trainer runs one at a
time, so one process is enough; calls made from inside it (a forecast rule's library fit
sent there whole) run in place instead of being queued to itself (`gather`).

A process that dies (killed, out of memory) fails the fit under way with one sentence
(`WorkerDied`); the next fit starts a new process.
"""

from __future__ import annotations

import atexit
import os
import threading
import warnings

from .. import memory_trim

_pool = None
_lock = threading.Lock()
_inside = False
_at_exit = False
NICE = 5  # how much nicer than the daemon the worker runs


class WorkerDied(RuntimeError):
    """The worker process stopped during a fit (killed, out of memory); the fit failed."""


def _init() -> None:
    global _inside
    _inside = True
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")  # one core's worth: the daemon keeps the other
    _lower(os.getpid(), os.getppid())  # (the daemon did it already, unless it could not)
    warnings.simplefilter("ignore")


def _lower(pid: int, parent: int) -> None:
    """Run process `pid` at NICE more than `parent`: a fit is background work, the daemon's
    own process comes first."""
    try:
        target = min(os.getpriority(os.PRIO_PROCESS, parent) + NICE, 19)
        if os.getpriority(os.PRIO_PROCESS, pid) < target:
            os.setpriority(os.PRIO_PROCESS, pid, target)
    except OSError:
        pass


def _lower_new(pool) -> None:
    """Lower a newly spawned worker's priority from the daemon at once: its start (a new
    interpreter importing numpy and alertd, a second or two of CPU) already yields to the
    daemon, instead of competing with the ticks until its initializer runs. (`_lower` only
    ever raises the niceness, so a worker already lowered is left as it is.)"""
    for pid in list(pool._processes or {}):
        _lower(pid, os.getpid())


def release_memory() -> None:
    """In the worker, after a fit: hand the heap its data left free back to the system
    (glibc keeps freed small blocks for reuse: a week of 10,000 series kept the idle worker at
    about 650 MB; alertd/memory_trim.py)."""
    memory_trim.trim(collect=True)


def worker():
    """The worker process pool (one process, spawned on first use)."""
    global _pool, _at_exit
    with _lock:
        if _pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            _pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_init)
            if not _at_exit:
                atexit.register(shutdown)
                _at_exit = True
        return _pool


def warm() -> None:
    """Start the worker process now, without waiting for it (the daemon's start does, when a
    rule will fit there): a new interpreter's imports are a second or two of CPU, better spent
    while the daemon starts than beside the ticks of the first fit."""
    pool = worker()
    pool.submit(os.getpid)
    _lower_new(pool)


def pids() -> list[int]:
    """The worker's process id, if it is running."""
    with _lock:
        return list((_pool._processes or {}) if _pool is not None else ())


def shutdown() -> None:
    """Stop the worker process now, a fit in it too (it is started again when next needed):
    at exit the daemon must not wait for minutes of fitting."""
    global _pool
    with _lock:
        if _pool is not None:
            for proc in list((_pool._processes or {}).values()):
                proc.terminate()
            _pool.shutdown(wait=True, cancel_futures=True)
            _pool = None


def run(what: str, func, *args):
    """`func(*args)` in the worker process, waiting for it (call from a worker thread, never
    the event loop). A dead worker raises `WorkerDied` naming `what` and is replaced at the
    next call."""
    return gather(what, [(func, *args)])[0]


def gather(what: str, calls: list[tuple]) -> list:
    """Several calls (func, *args) queued to the worker at once; their results in order.
    Called in the worker itself (a fit sent there whole), they run in place: queueing them to
    the one process that is busy running this call would wait for ever."""
    if _inside:
        return [call[0](*call[1:]) for call in calls]
    from concurrent.futures.process import BrokenProcessPool

    pool = worker()
    try:
        futures = [pool.submit(*call) for call in calls]
        _lower_new(pool)  # (submit spawned the process, if it was not running)
        return [f.result() for f in futures]
    except BrokenProcessPool:
        with _lock:
            broken = _pool is pool
        if broken:
            shutdown()
        raise WorkerDied(f"the {what} worker process stopped during a fit (killed, or out of memory?); "
                         "the next fit starts a new one") from None
