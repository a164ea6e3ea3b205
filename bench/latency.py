"""Benchmark (issue 8): from a sample arriving to the HTTP request reaching a webhook receiver.

    .venv/bin/python bench/latency.py       # --series 100 1000 10000 10000/10 --reps 40 --runs 3
    .venv/bin/python bench/latency.py --detector surprise --series 10000 --position spread start end

A daemon (fake clock, the real engine, store, router, outbox and dispatcher) watches n
series of an in-memory source with issue 8's `pyod` detector (KNN, threshold 0.999; or
`--detector surprise`, alertd's default since issue 15; a model fitted on 160 polls of
history and restored from the store), `for: 0s`, routed to a `webhook` receiver on
127.0.0.1 (a real HTTP/1.1 server with keep-alive, tests/servers.py) with `group_by: [host]`
and `group_wait: 0s`. Each repetition makes one more series jump to 10x its level and runs
one poll; the latency is from the moment the source's samples are ready (`collect` returned)
to the moment the receiver has read the webhook request about that series
(`group_interval: 1h`, so earlier groups do not re-notify during the run). The jumping
series are spread evenly over the poll (`--position spread`; `start` takes the first series
of the poll, `end` the last), since a tick in slices could favour some positions. Every poll
carries all the series of its source, so the latency includes the whole tick (store, score,
alert) of those samples, and the other webhooks of the same poll (false positives of the
calibrated threshold) are sent beside it.

`n/K` (for example 10000/10) splits the n series into K sources of n/K series, each read by
its own rule, as a fleet is usually polled: each repetition polls the other sources first (as
their own schedules would, at other moments of the 10 s interval), lets their notices go out,
then polls the source of the jumping series. Before every measured poll the outbox is empty
(with a 10 s interval the dispatcher has had 10 s). Medians over `--runs` fresh daemons of
each run's p50 and p99.

`--trace` prints where each measured notice's time went (bench/latency_trace.py): the tick's
steps, the detector calls, the sample insert, the commit, the flush and the send, garbage
collections, and the first detector call's size (the series judged before the notice).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import asyncio  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import scale_common as common  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import latency_trace  # noqa: E402
from servers import RecordingHTTPServer  # noqa: E402

TRACE = False  # --trace: per-stage timestamps of every measured notice (bench/latency_trace.py)
TRACED: list[tuple[float, float]] = []  # (samples ready, webhook read) of the measured notices


def _positions(n: int, reps: int, position: str) -> list[int]:
    """The series to make jump, in turn: from the `start` of the poll on, from its `end`
    backwards, or `spread` evenly over it (the next ones after each, for false positives)."""
    if position == "start":
        return list(range(n))
    if position == "end":
        return list(range(n - 1, -1, -1))
    step = max(1, n // reps)
    return [(i * step + j) % n for j in range(step) for i in range(reps)] + list(range(n))


async def measure(directory: Path, reps: int, arrived: list, split: int, position: str) -> list[float]:
    from alertd.clock import FakeClock
    from alertd.config.load import load_config
    from alertd.daemon.core import Daemon

    reg = common.registry()
    clock = FakeClock(time.time())
    daemon = Daemon(load_config(directory / "alertd.yaml", reg, environ={}), reg,
                    store_path=directory / "alertd.db", clock=clock)
    await daemon.start()
    daemon.scheduler.pause()  # the bench drives the polls
    names = common.source_names(split)
    each = daemon.sources[names[0]].params.series

    timer = daemon.group_timer
    # (bench/compare_latency.sh runs this file on commits before GroupTimer.pending)
    pending = getattr(timer, "pending", lambda: timer._wakeup.is_set())

    wal = getattr(daemon, "wal", None)  # (commits before the daemon ran WAL checkpoints have none)
    checkpointing = wal.running if wal is not None else (lambda: False)

    async def quiet() -> None:  # every group due flushed, every queued notice sent, no checkpoint running
        while (daemon.store.outbox.pending_count() or pending() or checkpointing()
               or (daemon.engine.router.next_flush_at() or float("inf")) <= clock.now()):
            await asyncio.sleep(0.001)

    for _ in range(3):  # warm caches (the first poll seeds the windows from the store)
        clock.advance(common.INTERVAL)
        for name in names:
            await daemon.poll(name)
    await quiet()
    n = each * len(names)
    order = _positions(n, reps, position)
    latencies, at = [], -1
    for _ in range(reps):
        at += 1
        k = order[at % n]
        host = f'"h{k:05d}"'.encode()  # the webhook about series k (others may be in flight)
        while any(host in body for _, body in arrived):  # already notified (a false positive)
            at += 1
            k = order[at % n]
            host = f'"h{k:05d}"'.encode()
        target = names[k // each]
        clock.advance(common.INTERVAL)
        for name in names:
            if name != target:
                await daemon.poll(name)
        await quiet()
        source = daemon.sources[target]
        source.jump(k % each)
        await daemon.poll(target)
        while not any(host in body for _, body in arrived):  # the dispatcher task sends it
            await asyncio.sleep(0.0005)
        received = next(t for t, body in arrived if host in body)
        latencies.append(received - source.collected_at)
        TRACED.append((source.collected_at, received))
    await daemon.drain()
    return latencies


DETECTORS = {"pyod": None,  # scale_common's default: KNN, threshold 0.999, rule scope (issue 8's setup)
             "surprise": "{type: surprise}"}  # alertd's default detector since issue 15


def run(n: int, split: int, reps: int, position: str = "spread", detector: str = "pyod") -> dict:
    arrived: list[tuple[float, bytes]] = []

    def handler(request):
        arrived.append((time.perf_counter(), request.body))
        return 200, {}, "ok"

    with RecordingHTTPServer(handler=handler, keep_alive=True) as server, tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        common.build(directory, n, 160, receivers=f'  hook: [{{type: webhook, url: "{server.url}/hook"}}]',
                     routes="routes: {receiver: hook, group_by: [host], group_wait: 0s, group_interval: 1h}\n",
                     split=split, detector=DETECTORS[detector],
                     # surprise learns at every point: keep the state a running daemon has, not
                     # the first fit's (a warming-up model pages on ~1.5% of the series a poll)
                     save_last=detector == "surprise")
        common.quiet_logs()
        TRACED.clear()
        lat = asyncio.run(measure(directory, reps, arrived, split, position))
    if TRACE:
        latency_trace.report(TRACED)
    return {"p50": common.pct(lat, 50) * 1000, "p99": common.pct(lat, 99) * 1000, "max": max(lat) * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", nargs="+", default=["100", "1000", "10000", "10000/10"],
                        help="n series in one source, or n/K: n series in K sources")
    parser.add_argument("--reps", type=int, default=40)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--detector", choices=sorted(DETECTORS), default="pyod",
                        help="the rule's detector: pyod (KNN, as issue 8 measured) or surprise (the default)")
    parser.add_argument("--no-slices", action="store_true",
                        help="score and route each poll in one slice, as before issue 20 (a same-code baseline)")
    parser.add_argument("--position", nargs="+", default=["spread"], choices=["spread", "start", "end"],
                        help="where in the poll the jumping series are: spread evenly over it (the default), "
                             "its first series, its last")
    parser.add_argument("--trace", action="store_true",
                        help="print per-stage timestamps of every measured notice (bench/latency_trace.py)")
    args = parser.parse_args()
    if args.trace:
        global TRACE
        TRACE = True
        latency_trace.install()
    if args.no_slices:
        from alertd.engine import slices

        slices.HEAD_FROM = 10 ** 12
    common.quiet_logs()
    print(common.machine())
    print(f"detector {args.detector}" + (", no slices (one per poll, as before issue 20)" if args.no_slices else ""))
    print(f"{'series':>10} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}   (medians of {args.runs} runs x "
          f"{args.reps} webhooks; group_wait 0; goal p99 <= 50 ms)")
    for case in args.series:
        n, _, k = case.partition("/")
        for position in args.position:
            runs = [run(int(n), int(k or 1), args.reps, position, args.detector) for _ in range(args.runs)]
            med = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
            print(f"{case:>10} {med['p50']:>8.1f} {med['p99']:>8.1f} {med['max']:>8.1f}   {position}")
    print("end of run: " + common.machine())


if __name__ == "__main__":
    main()
