"""Per-stage timestamps for bench/latency.py's `--trace`: where a notice's time goes.

`install()` wraps (in this process only, the bench's) the steps between a poll's samples and
the webhook: the tick's preparation, the urgent screen, each detector call (its start and end
in the worker thread, and its number of series), the samples' insert, judging and committing
each slice, the pause between slices, the group timer's flush, the delivery pass and the HTTP
request; and it records the garbage collector's passes (`gc.callbacks`) and, at every step,
the thread's CPU time and run-queue wait (/proc/thread-self/schedstat). Times are
`perf_counter()` seconds, as the bench's own. `report(reps)` prints, for each measured
notice, the stages in ms after its samples were ready, a table of the path's steps (median,
p90, max), and the events of the three slowest notices.
"""

from __future__ import annotations

import functools
import gc
import statistics
import threading
import time

EVENTS: list[tuple[float, str, float, float]] = []  # (perf_counter, label, thread CPU s, run-queue wait s)
GC: list[tuple[float, float, int]] = []  # (start, end, generation)
CALLS: list[tuple[float, int]] = []  # (when a detector call started, its series)


def _sched() -> tuple[float, float]:
    """This thread's CPU time and time spent runnable but not running (the kernel's
    schedstat): a step whose wall time is neither was blocked (I/O, a lock, the GIL)."""
    try:
        with open("/proc/thread-self/schedstat") as f:
            cpu, wait, _ = f.read().split()
        return int(cpu) / 1e9, int(wait) / 1e9
    except (OSError, ValueError):
        return 0.0, 0.0


def _mark(label: str) -> None:
    EVENTS.append((time.perf_counter(), label, *_sched()))


def _wrap(owner, name: str, label: str) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        _mark(label + ">")
        try:
            return original(*args, **kwargs)
        finally:
            _mark(label + "<")

    setattr(owner, name, wrapper)


def _wrap_async(owner, name: str, label: str) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    async def wrapper(*args, **kwargs):
        _mark(label + ">")
        try:
            return await original(*args, **kwargs)
        finally:
            _mark(label + "<")

    setattr(owner, name, wrapper)


def _gc_callback(phase: str, info: dict, _started=[0.0]) -> None:
    if phase == "start":
        _started[0] = time.perf_counter()
    else:
        GC.append((_started[0], time.perf_counter(), info["generation"]))


def install() -> None:
    """Wrap the stages (call before the daemon is built)."""
    from alertd.daemon import polls
    from alertd.delivery import worker
    from alertd.engine import scoring, slices, tick, training
    from alertd.http_notifier import HttpNotifier
    from alertd.routing import timer
    from alertd.store import samples

    _wrap(tick.Engine, "_clean", "clean")
    _wrap(slices, "slice_order", "order")
    _wrap(slices.PollTick, "_start", "submit")
    _wrap(slices.PollTick, "_finish", "finish")
    _wrap(slices.PollTick, "_judge", "judge")
    _wrap(slices.PollTick, "_commit", "commit")
    _wrap(samples.SampleStore, "append", "append")
    _wrap(timer.GroupTimer, "flush_due", "flush")
    _wrap_async(polls.Polling, "_settle", "settle")
    _wrap_async(worker.OutboxWorker, "run_once", "deliver")
    _wrap_async(HttpNotifier, "post_json", "post")
    _wrap(training.Trainer, "_job", "fit")  # a model fit, in its worker thread
    timed = scoring._timed

    def traced(call, arg):  # in the detector's worker thread
        CALLS.append((time.perf_counter(), len(arg)))
        _mark("score>")
        try:
            return timed(call, arg)
        finally:
            _mark("score<")

    scoring._timed = traced
    gc.callbacks.append(_gc_callback)


def _stages(t0: float, t1: float) -> dict[str, float]:
    """First start and end of each stage in [t0, t1], ms after t0 (a stage's second
    occurrence, e.g. the second detector call, as label#2)."""
    out: dict[str, float] = {}
    seen: dict[str, int] = {}
    for t, label, _, _ in EVENTS:
        if t0 <= t <= t1:
            seen[label] = seen.get(label, 0) + 1
            key = label if seen[label] == 1 else f"{label}#{seen[label]}"
            out.setdefault(key, (t - t0) * 1000)
    return out


def _since(j: int) -> str:
    """[CPU, run-queue wait] of event j's thread since its previous event (same thread: the
    wrapped steps of a thread nest; the detector's thread marks only its calls)."""
    label, cpu, wait = EVENTS[j][1], EVENTS[j][2], EVENTS[j][3]
    own = label.startswith(("score", "fit"))
    for k in range(j - 1, max(-1, j - 200), -1):
        if EVENTS[k][1].startswith(("score", "fit")) == own:
            return f" [{(cpu - EVENTS[k][2]) * 1000:.1f},{(wait - EVENTS[k][3]) * 1000:.1f}]"
    return ""


STEPS = [  # (name, from, to): the path of the first slice's notice
    ("prep: clean, keys, urgent screen", None, "order<"),
    ("urgent slice's detector call", "score>", "score<"),
    ("waiting for the sample insert", "score<", "finish<"),
    ("judge", "finish<", "judge<"),
    ("commit", "judge<", "commit<"),
    ("flush and send", "commit<", "post<"),
]


def _durations(rows) -> None:
    """Median, p90 and max of each step of the path over the notices (ms), and how many
    notices had the step above 10 ms."""
    print(f"{'step':<34} {'median':>7} {'p90':>7} {'max':>7} {'>10ms':>6}")
    for name, start, end in STEPS:
        values = sorted(max(0.0, st[end] - (st[start] if start else 0.0)) for _, st, _, _ in rows
                        if end in st and (start is None or start in st))
        if values:
            print(f"{name:<34} {statistics.median(values):7.1f} {values[int(0.9 * (len(values) - 1))]:7.1f} "
                  f"{values[-1]:7.1f} {sum(v > 10 for v in values):6d}")
    late = sum(1 for total, st, _, _ in rows if "score<#2" in st and total > st["score<#2"])
    print(f"notices that left only after the rest of the poll was scored (not in the first slice): {late}")
    totals = sorted(total for total, _, _, _ in rows)
    print(f"{'sample to webhook':<34} {statistics.median(totals):7.1f} {totals[int(0.9 * (len(totals) - 1))]:7.1f} "
          f"{totals[-1]:7.1f}")


def report(reps: list[tuple[float, float]]) -> None:
    """Print the stages of every measured notice; reps are (samples ready, webhook read)."""
    columns = ["clean>", "order<", "score>", "append>", "append<", "score<", "finish<", "judge<",
               "commit<", "settle>", "flush>", "flush<", "deliver>", "post>", "post<", "score>#2",
               "score<#2", "settle<", "fit>", "fit<"]
    rows = []
    for t0, t1 in reps:
        st = _stages(t0, t1 + 0.05)
        gcs = [(s, e, g) for s, e, g in GC if t0 <= s <= t1]
        first = next((n for at, n in CALLS if t0 <= at <= t1), 0)  # the first detector call's series
        rows.append(((t1 - t0) * 1000, st, gcs, first))
    print(f"\ntrace: ms after the samples were ready ({len(rows)} notices; '-' not in the window)")
    print(f"{'total':>6} " + " ".join(f"{c:>8}" for c in columns) + f" {'gc ms(gen)':>12} {'head':>6}")
    for total, st, gcs, head in sorted(rows, key=lambda r: r[0]):
        gc_text = ",".join(f"{(e - s) * 1000:.1f}({g})" for s, e, g in gcs) or "-"
        print(f"{total:6.1f} " + " ".join(f"{st[c]:8.1f}" if c in st else f"{'-':>8}" for c in columns)
              + f" {gc_text:>12} {head:6d}")
    print(f"{'median':>6} " + " ".join(
        f"{statistics.median(v):8.1f}" if (v := [st[c] for _, st, _, _ in rows if c in st]) else f"{'-':>8}"
        for c in columns))
    for i in sorted(range(len(reps)), key=lambda i: reps[i][0] - reps[i][1])[:3]:
        t0, t1 = reps[i]
        print(f"a slowest notice's events ({(t1 - t0) * 1000:.1f} ms; ms after the samples, "
              "[thread CPU ms, run-queue wait ms] since the thread's previous event): " + ", ".join(
                  f"{label} {(t - t0) * 1000:.1f}" + _since(j) for j, (t, label, _, _) in enumerate(EVENTS)
                  if t0 - 0.002 <= t <= t1 + 0.002))
    _durations(rows)
    print(f"gc passes in the measured windows: {sum(len(g) for _, _, g, _ in rows)}; "
          f"threads alive: {threading.active_count()}")
